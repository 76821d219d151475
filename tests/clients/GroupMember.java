// One Apache Kafka Java consumer-group member run as its own process, launched from
// source like JavaClient.java:
//     java -cp <kafka jars> tests/clients/GroupMember.java '<json options>'
// Options and the JSON lines it prints: see group_member.py. SIGTERM wakes the poll
// loop and closes the consumer (a dynamic member leaves the group); SIGKILL does not.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    static final ObjectMapper JSON = new ObjectMapper();

    static synchronized void emit(ObjectNode line) {
        System.out.println(line.toString());
        System.out.flush();
    }

    static ObjectNode event(String name) {
        ObjectNode line = JSON.createObjectNode();
        line.put("event", name);
        return line;
    }

    static void emitPartitions(String name, Collection<TopicPartition> partitions) {
        ObjectNode line = event(name);
        ArrayNode list = line.putArray("partitions");
        partitions.stream().mapToInt(TopicPartition::partition).sorted().forEach(list::add);
        emit(line);
    }

    public static void main(String[] args) throws Exception {
        JsonNode opts = JSON.readTree(args[0]);
        int session = opts.path("session_timeout_ms").asInt(6000);
        String strategy = opts.path("strategy").asText("range");
        Properties props = new Properties();
        props.put("bootstrap.servers", opts.get("bootstrap").asText());
        props.put("group.id", opts.get("group").asText());
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        props.put("session.timeout.ms", String.valueOf(session));
        props.put("heartbeat.interval.ms", String.valueOf(Math.max(100, session / 10)));
        props.put("max.poll.interval.ms", "30000");
        props.put("max.poll.records", String.valueOf(opts.path("max_poll_records").asInt(50)));
        props.put("partition.assignment.strategy", switch (strategy) {
            case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
            case "roundrobin" -> "org.apache.kafka.clients.consumer.RoundRobinAssignor";
            case "sticky" -> "org.apache.kafka.clients.consumer.StickyAssignor";
            case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default -> throw new IllegalArgumentException("unknown strategy " + strategy);
        });
        if (opts.hasNonNull("instance_id")) {
            props.put("group.instance.id", opts.get("instance_id").asText());
        }
        boolean commit = opts.path("commit").asBoolean(true);
        long holdAfter = opts.hasNonNull("hold_after") ? opts.get("hold_after").asLong() : -1;

        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            consumer.wakeup();
            try {
                closed.await();
            } catch (InterruptedException ignored) {
            }
            Runtime.getRuntime().halt(0); // closed cleanly: exit 0, not the JVM's 143
        }));
        consumer.subscribe(List.of(opts.get("topic").asText()), new ConsumerRebalanceListener() {
            public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
                emitPartitions("revoked", revoked);
            }

            public void onPartitionsAssigned(Collection<TopicPartition> added) {
                emitPartitions("assigned", consumer.assignment());
            }
        });
        long processed = 0;
        try {
            while (true) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                if (batch.isEmpty()) continue;
                ObjectNode line = event("records");
                ArrayNode records = line.putArray("records");
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    records.addArray().add(r.partition()).add(r.offset());
                }
                emit(line);
                processed += batch.count();
                if (holdAfter >= 0 && processed >= holdAfter) {
                    emit(event("holding"));
                    Thread.sleep(Long.MAX_VALUE); // never commit: the test kills us here
                }
                if (commit) {
                    try {
                        consumer.commitSync();
                        emit(event("committed"));
                    } catch (WakeupException e) {
                        throw e;
                    } catch (Exception e) {
                        ObjectNode failed = event("commit_failed");
                        failed.put("error", e.getClass().getSimpleName());
                        emit(failed);
                    }
                }
            }
        } catch (WakeupException e) {
            // SIGTERM
        } finally {
            consumer.close();
            emit(event("closed"));
            closed.countDown();
        }
    }
}
