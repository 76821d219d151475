// Test driver for kafkajs. Run by tests/clients/kafkajs_driver.py as
//     NODE_PATH=$BROOK_CACHE/node/node_modules node tests/clients/kafkajs_client.js
// It serves requests read from stdin until EOF (protocol: tests/clients/wire.py).
//
// Defaults everywhere except brokers and the compression codec, with these notes:
// * kafkajs ships only gzip; snappy/lz4/zstd codecs are registered the documented way
//   (CompressionCodecs[type] = codec) with kafkajs-snappy, lz4js and zstd-wasm.
// * Per-record acks: the producer's default partitioner is wrapped (same decisions) only
//   to learn which partition each message went to; offsets come from the produce
//   response (baseOffset + position within the partition's batch).
// * kafkajs has no manual partition assignment (its consumer always joins a group), so
//   consume() uses its public consumer with a fresh group per read, subscribed
//   fromBeginning, defaults otherwise (fetch sizes, wait time, read_committed).
// * Only the public API: require('kafkajs') and nothing under kafkajs/src.
'use strict'

const util = require('util')
const readline = require('readline')
const {
  Kafka,
  CompressionTypes,
  CompressionCodecs,
  Partitioners,
  ConfigResourceTypes,
  logLevel,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const lz4xxh32 = require('lz4js/xxh32')
const zstd = require('@bokuweb/zstd-wasm')

// Nothing but this program's protocol goes to stdout.
const toStderr = (...args) => process.stderr.write(util.format(...args) + '\n')
console.log = console.info = console.warn = console.debug = toStderr

// ---------------------------------------------------------------- codecs
const zstdReady = zstd.init()

// lz4js.compress() writes frames with dependent blocks, which Kafka refuses; build the
// frame from lz4js blocks instead: independent 64 KiB blocks, like Kafka's own writer.
function lz4Frame(src) {
  const BLOCK = 1 << 16
  const header = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0]) // magic, FLG, BD, HC
  header[6] = (lz4xxh32.hash(0, header, 4, 2) >> 8) & 0xff
  const parts = [header]
  for (let start = 0; start < src.length; start += BLOCK) {
    const n = Math.min(BLOCK, src.length - start)
    const dst = lz4.makeBuffer(lz4.compressBound(n))
    const size = lz4.compressBlock(src, dst, start, n, new Uint32Array(1 << 16))
    const len = Buffer.alloc(4)
    if (size === 0 || size >= n) {
      len.writeUInt32LE((0x80000000 | n) >>> 0)
      parts.push(len, Buffer.from(src.subarray(start, start + n)))
    } else {
      len.writeUInt32LE(size)
      parts.push(len, Buffer.from(dst.buffer, dst.byteOffset, size))
    }
  }
  parts.push(Buffer.alloc(4)) // end mark
  return Buffer.concat(parts)
}

const LZ4Codec = () => ({
  async compress(encoder) {
    return lz4Frame(encoder.buffer)
  },
  async decompress(buffer) {
    return Buffer.from(lz4.decompress(buffer))
  },
})

const ZstdCodec = () => ({
  async compress(encoder) {
    await zstdReady
    return Buffer.from(zstd.compress(encoder.buffer, 3))
  },
  async decompress(buffer) {
    await zstdReady
    // Frames without a content size (streaming compressors) need a guessed capacity.
    let size = Math.max(1 << 20, buffer.length * 16)
    for (;;) {
      try {
        return Buffer.from(zstd.decompress(buffer, { defaultHeapSize: size }))
      } catch (e) {
        if (size >= 1 << 30) throw e
        size *= 4
      }
    }
  },
})

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = LZ4Codec
CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// ---------------------------------------------------------------- clients
const logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`${new Date().toISOString()} ${level} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

const clients = new Map()
function client(bootstrap) {
  if (!clients.has(bootstrap)) {
    clients.set(bootstrap, new Kafka({ brokers: bootstrap.split(','), logCreator, logLevel: logLevel.INFO }))
  }
  return clients.get(bootstrap)
}

const admins = new Map()
async function admin(bootstrap) {
  if (!admins.has(bootstrap)) {
    const a = client(bootstrap).admin()
    await a.connect()
    admins.set(bootstrap, a)
  }
  return admins.get(bootstrap)
}

// ---------------------------------------------------------------- wire format
const b64 = buf => (buf == null ? '~' : Buffer.from(buf).toString('base64'))
const unb64 = s => (s === '~' ? null : Buffer.from(s, 'base64'))

function parseRecord(line) {
  const [p, ts, key, value, headers] = line.split('\t')
  const message = { key: unb64(key), value: unb64(value) }
  if (p !== '') message.partition = Number(p)
  if (ts !== '') message.timestamp = ts
  if (headers) {
    message.headers = {}
    for (const item of headers.split(',')) {
      const [n, v] = item.split(':')
      const name = unb64(n).toString('utf8')
      const val = unb64(v)
      const prev = message.headers[name]
      message.headers[name] = prev === undefined ? val : [].concat(prev, [val])
    }
  }
  return message
}

function formatHeaders(headers) {
  const out = []
  for (const [name, value] of Object.entries(headers || {})) {
    for (const v of Array.isArray(value) ? value : [value]) out.push(`${b64(Buffer.from(name))}:${b64(v)}`)
  }
  return out.join(',')
}

// ---------------------------------------------------------------- operations
const PRODUCE_CHUNK = 1000

async function produce(req, lines, out) {
  const messages = []
  for (let i = 0; i < req.count; i++) messages.push(parseRecord(await lines.next()))
  const assigned = new Map()
  const producer = client(req.bootstrap).producer({
    createPartitioner: () => {
      const partitioner = Partitioners.DefaultPartitioner()
      return args => {
        const p = partitioner(args)
        assigned.set(args.message, p)
        return p
      }
    },
  })
  await producer.connect()
  try {
    for (let start = 0; start < messages.length; start += PRODUCE_CHUNK) {
      const chunk = messages.slice(start, start + PRODUCE_CHUNK)
      const result = await producer.send({
        topic: req.topic,
        messages: chunk,
        compression: COMPRESSION[req.compression],
      })
      const base = new Map(result.map(r => [r.partition, BigInt(r.baseOffset)]))
      const seen = new Map()
      for (const m of chunk) {
        const p = m.partition != null ? m.partition : assigned.get(m)
        const k = seen.get(p) || 0n
        seen.set(p, k + 1n)
        out.push(`${p}\t${base.get(p) + k}`)
      }
    }
  } finally {
    await producer.disconnect()
  }
}

// One fresh group per read: it has no committed offsets, so `fromBeginning` applies and
// the read starts at each partition's log start, like the other drivers' manual reads.
let groupSeq = 0

async function consume(req, out) {
  const wanted = req.partitions != null ? new Set(req.partitions) : null
  const groupId = `brook-test-${process.pid}-${Date.now()}-${++groupSeq}`
  const consumer = client(req.bootstrap).consumer({ groupId })
  let count = 0
  let finished = false
  let finish
  const done = new Promise(resolve => {
    finish = () => {
      finished = true
      resolve()
    }
  })
  const timer = setTimeout(finish, req.timeout_ms)
  if (req.expected <= 0) finish()
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }) => {
        if (finished || (wanted && !wanted.has(batch.partition))) return
        for (const m of batch.messages) {
          out.push(
            [batch.partition, m.offset, m.timestamp, b64(m.key), b64(m.value), formatHeaders(m.headers)].join('\t')
          )
          count++
        }
        if (count >= req.expected) finish()
      },
    })
    // consumer.run returns once the consumer is running; records arrive in eachBatch.
    // Stop (and leave the group) once everything expected is read or time is up;
    // disconnecting from inside eachBatch would wait for itself.
    await done
  } finally {
    clearTimeout(timer)
    await consumer.disconnect()
  }
}

function configEntries(obj) {
  return Object.entries(obj || {}).map(([name, value]) => ({ name, value: String(value) }))
}

async function describeConfigs(a, topic) {
  const { resources } = await a.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
  })
  const res = resources[0]
  if (res.errorCode) throw protocolError(res.errorCode, res.errorMessage)
  return res.configEntries
}

// An error the broker returned that kafkajs hands back as a result, not an exception;
// the Python side names it from the code.
function protocolError(code, message) {
  const e = new Error(message || `broker error code ${code}`)
  e.type = `ERROR_CODE_${code}`
  e.code = code
  return e
}

async function handle(req, lines, out, status) {
  switch (req.op) {
    case 'produce':
      return produce(req, lines, out)
    case 'consume':
      return consume(req, out)
    case 'create_topic': {
      const a = await admin(req.bootstrap)
      const created = await a.createTopics({
        validateOnly: req.validate_only,
        // waiting for leaders of a topic that validate_only does not create would fail
        waitForLeaders: !req.validate_only,
        topics: [
          {
            topic: req.topic,
            numPartitions: req.partitions,
            replicationFactor: req.replication_factor == null ? -1 : req.replication_factor,
            configEntries: configEntries(req.config),
          },
        ],
      })
      // kafkajs reports TOPIC_ALREADY_EXISTS as a `false` result instead of an error
      if (created === false) throw protocolError(36, `Topic '${req.topic}' already exists.`)
      return
    }
    case 'describe_topic': {
      const a = await admin(req.bootstrap)
      const { topics } = await a.fetchTopicMetadata({ topics: [req.topic] })
      const parts = topics[0].partitions
      status.partitions = parts.length
      status.replication_factor = parts.length ? parts[0].replicas.length : 0
      status.configs = {}
      for (const e of await describeConfigs(a, req.topic)) status.configs[e.configName] = e.configValue
      return
    }
    case 'alter_topic_config': {
      // kafkajs has only AlterConfigs (replaces all dynamic configs): read-modify-write
      const a = await admin(req.bootstrap)
      const merged = {}
      for (const e of await describeConfigs(a, req.topic)) {
        if (e.configSource === 1) merged[e.configName] = e.configValue // DYNAMIC_TOPIC_CONFIG
      }
      for (const [k, v] of Object.entries(req.changes)) {
        if (v === null) delete merged[k]
        else merged[k] = v
      }
      await a.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: req.topic, configEntries: configEntries(merged) }],
      })
      return
    }
    case 'create_partitions': {
      const a = await admin(req.bootstrap)
      await a.createPartitions({ topicPartitions: [{ topic: req.topic, count: req.total }] })
      return
    }
    case 'delete_topic': {
      const a = await admin(req.bootstrap)
      await a.deleteTopics({ topics: [req.topic] })
      return
    }
    case 'list_topics': {
      const a = await admin(req.bootstrap)
      status.topics = await a.listTopics()
      return
    }
    default:
      throw new Error(`unknown op ${req.op}`)
  }
}

function errorJson(e) {
  let x = e
  for (let i = 0; i < 10 && x && !x.type; i++) {
    if (x.cause) x = x.cause
    else if (x.originalError) x = x.originalError
    else if (Array.isArray(x.errors) && x.errors.length) x = x.errors[0]
    else break
  }
  if (x && x.type) return { name: x.type, code: x.code == null ? null : x.code, message: String(e.message) }
  return { name: (e && e.name) || 'Error', code: null, message: String((e && e.message) || e) }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  const iterator = rl[Symbol.asyncIterator]()
  const lines = {
    async next() {
      const r = await iterator.next()
      if (r.done) throw new Error('unexpected end of input')
      return r.value
    },
  }
  for (;;) {
    const r = await iterator.next()
    if (r.done) break
    if (!r.value) continue
    const req = JSON.parse(r.value)
    const out = []
    const status = {}
    try {
      await handle(req, lines, out, status)
      status.ok = true
    } catch (e) {
      status.ok = false
      status.error = errorJson(e)
      toStderr('request failed:', e)
    }
    out.push('#' + JSON.stringify(status))
    process.stdout.write(out.join('\n') + '\n')
  }
  for (const a of admins.values()) await a.disconnect().catch(() => {})
  process.exit(0)
}

main().catch(e => {
  toStderr('fatal:', e)
  process.exit(1)
})
