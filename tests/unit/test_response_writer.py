"""The response writer over a real loopback connection: file slices sent with sendfile
arrive intact and in order, even when the client is slow and the segment's descriptor
is closed (its number reused for another file) while the response waits."""

import asyncio
import os

from brook.broker.response_writer import prepare, write_response
from brook.broker.storage.log import FileSlice


def test_slices_survive_their_descriptor_being_closed_and_reused(tmp_path):
    first, second = tmp_path / "00000.log", tmp_path / "other.log"
    first.write_bytes(b"A" * 300_000)
    second.write_bytes(b"B" * 300_000)
    blocker = b"h" * 8_000_000  # more than the socket buffers hold: the writer must wait

    async def main():
        fd = os.open(first, os.O_RDONLY)
        reused = {}
        sent = asyncio.Event()

        async def serve(reader, writer):
            prepare(writer)
            response = [blocker, FileSlice(fd, 1000, 200_000), b"tail"]
            task = asyncio.create_task(write_response(writer, response))
            await asyncio.sleep(0.2)  # the writer is stuck behind the unread blocker
            # retention closed the segment and its number now names another file
            # (dup2 does both at once: a freshly opened file may get another number)
            other = os.open(second, os.O_RDONLY)
            os.dup2(other, fd)
            os.close(other)
            reused["fd"] = fd
            await task
            sent.set()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.5)  # a slow client
        data = await asyncio.wait_for(reader.read(), 30)
        await sent.wait()
        writer.close()
        server.close()
        os.close(reused["fd"])
        return fd, reused["fd"], data

    _fd, _reused_fd, data = asyncio.run(main())
    assert data == blocker + b"A" * 200_000 + b"tail"
