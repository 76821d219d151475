// One kafkajs consumer-group member run as its own process:
//     node tests/clients/group_member.js '<json options>'   (NODE_PATH = cached node_modules)
// Options and the JSON lines it prints: see group_member.py. kafkajs has no static
// membership and no cooperative protocol: instance_id and strategy are refused.
const { Kafka, logLevel } = require('kafkajs')

const opts = JSON.parse(process.argv[2])
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
if (opts.instance_id || (opts.strategy && opts.strategy !== 'roundrobin')) {
  console.error('kafkajs supports neither group.instance.id nor assignors other than round-robin')
  process.exit(2)
}

const session = opts.session_timeout_ms || 6000
const kafka = new Kafka({ brokers: [opts.bootstrap], clientId: 'group-member', logLevel: logLevel.NOTHING,
                          retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } })
// kafkajs heartbeats between batches: a short fetch wait keeps rebalances quick.
const consumer = kafka.consumer({ groupId: opts.group, sessionTimeout: session,
                                  heartbeatInterval: Math.max(100, Math.floor(session / 10)),
                                  rebalanceTimeout: 30000, maxWaitTimeInMs: 200 })
consumer.on(consumer.events.GROUP_JOIN, (e) => {
  emit('assigned', { partitions: (e.payload.memberAssignment[opts.topic] || []).slice().sort((a, b) => a - b) })
})
let processed = 0
let stopping = false

async function main () {
  await consumer.connect()
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning }) => {
      if (!isRunning() || batch.messages.length === 0) return
      emit('records', { records: batch.messages.map((m) => [batch.partition, Number(m.offset)]) })
      for (const m of batch.messages) resolveOffset(m.offset)
      processed += batch.messages.length
      if (opts.hold_after != null && processed >= opts.hold_after) {
        emit('holding')
        await new Promise(() => {}) // never commit: the test kills us here
      }
      if (opts.commit !== false) {
        const last = batch.messages[batch.messages.length - 1].offset
        try {
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition,
                                          offset: String(Number(last) + 1) }])
          emit('committed')
        } catch (e) {
          emit('commit_failed', { error: e.type || e.name })
        }
      }
      await heartbeat()
    }
  })
}

process.on('SIGTERM', async () => {
  if (stopping) return
  stopping = true
  await consumer.disconnect() // LeaveGroup
  emit('closed')
  process.exit(0)
})
main().catch((e) => { console.error(e); process.exit(1) })
