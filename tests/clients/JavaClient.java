// Test driver for the Apache Kafka Java client (KafkaProducer, KafkaConsumer, Admin).
//
// Launched by tests/clients/java_driver.py with Java's single-file source launcher:
//     java -cp <kafka jars> tests/clients/JavaClient.java
// (no build output). It serves requests read from stdin until EOF; the line protocol is
// described in tests/clients/wire.py. Every client uses its default settings except
// bootstrap.servers and compression.type (and, for produce with "durable", acks=all
// and enable.idempotence=true set explicitly).

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaClient {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Base64.Encoder B64 = Base64.getEncoder();
    static final Base64.Decoder UNB64 = Base64.getDecoder();
    static final Map<String, Admin> ADMINS = new HashMap<>();
    static BufferedReader in;
    static PrintWriter out;

    public static void main(String[] args) throws Exception {
        in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16);
        out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(
                new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8), 1 << 16));
        System.setOut(System.err); // only this class writes to the protocol stream
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            JsonNode req = JSON.readTree(line);
            ObjectNode status = JSON.createObjectNode();
            try {
                handle(req, status);
                status.put("ok", true);
            } catch (Throwable t) {
                status.put("ok", false);
                status.set("error", errorJson(t));
            }
            out.print("#");
            out.println(JSON.writeValueAsString(status));
            out.flush();
        }
        for (Admin a : ADMINS.values()) a.close(Duration.ofSeconds(5));
    }

    static void handle(JsonNode req, ObjectNode status) throws Exception {
        String op = req.get("op").asText();
        String bootstrap = req.get("bootstrap").asText();
        switch (op) {
            case "produce": produce(req, bootstrap); break;
            case "consume": consume(req, bootstrap); break;
            case "create_topic": createTopic(req, bootstrap); break;
            case "describe_topic": describeTopic(req, bootstrap, status); break;
            case "alter_topic_config": alterTopicConfig(req, bootstrap); break;
            case "create_partitions":
                admin(bootstrap).createPartitions(Map.of(req.get("topic").asText(),
                        NewPartitions.increaseTo(req.get("total").asInt()))).all().get();
                break;
            case "delete_topic":
                admin(bootstrap).deleteTopics(List.of(req.get("topic").asText())).all().get();
                break;
            case "list_topics": {
                ArrayNode names = status.putArray("topics");
                for (String n : admin(bootstrap).listTopics().names().get()) names.add(n);
                break;
            }
            default: throw new IllegalArgumentException("unknown op " + op);
        }
    }

    // ------------------------------------------------------------------ data path

    static String b64(byte[] b) { return b == null ? "~" : B64.encodeToString(b); }
    static byte[] unb64(String s) { return s.equals("~") ? null : UNB64.decode(s); }

    static void produce(JsonNode req, String bootstrap) throws Exception {
        String topic = req.get("topic").asText();
        int count = req.get("count").asInt();
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(count);
        for (int i = 0; i < count; i++) { // always read the whole request first
            String[] f = in.readLine().split("\t", -1);
            Integer partition = f[0].isEmpty() ? null : Integer.valueOf(f[0]);
            Long ts = f[1].isEmpty() ? null : Long.valueOf(f[1]);
            List<Header> headers = new ArrayList<>();
            if (!f[4].isEmpty()) {
                for (String h : f[4].split(",")) {
                    int c = h.indexOf(':');
                    headers.add(new RecordHeader(new String(UNB64.decode(h.substring(0, c)),
                            StandardCharsets.UTF_8), unb64(h.substring(c + 1))));
                }
            }
            records.add(new ProducerRecord<>(topic, partition, ts, unb64(f[2]), unb64(f[3]), headers));
        }
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        String compression = req.get("compression").asText();
        if (!compression.equals("none")) props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        if (req.has("durable") && req.get("durable").asBoolean()) {
            // the cluster fault tests: state the guarantees they check rather than rely
            // on the client's defaults (which are the same since Kafka 3.0)
            props.put(ProducerConfig.ACKS_CONFIG, "all");
            props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        }
        int[] partitions = new int[count];
        long[] offsets = new long[count];
        AtomicReference<Exception> error = new AtomicReference<>();
        // optional pacing: send record i no earlier than i / per_second seconds in
        int perSecond = req.has("per_second") ? req.get("per_second").asInt() : 0;
        long startNanos = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < count; i++) {
                if (perSecond > 0) {
                    long due = startNanos + i * 1_000_000_000L / perSecond;
                    long wait = due - System.nanoTime();
                    if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
                final int idx = i;
                producer.send(records.get(i), (md, ex) -> {
                    if (ex != null) error.compareAndSet(null, ex);
                    else { partitions[idx] = md.partition(); offsets[idx] = md.offset(); }
                });
            }
            producer.flush();
        }
        if (error.get() != null) throw error.get();
        StringBuilder sb = new StringBuilder(count * 12);
        for (int i = 0; i < count; i++) sb.append(partitions[i]).append('\t').append(offsets[i]).append('\n');
        out.print(sb);
    }

    static void consume(JsonNode req, String bootstrap) {
        String topic = req.get("topic").asText();
        int expected = req.get("expected").asInt();
        long deadline = System.currentTimeMillis() + req.get("timeout_ms").asLong();
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            JsonNode parts = req.get("partitions");
            if (parts == null || parts.isNull()) {
                List<PartitionInfo> infos = consumer.partitionsFor(topic);
                if (infos == null || infos.isEmpty()) throw new UnknownTopicOrPartitionException(topic);
                for (PartitionInfo p : infos) tps.add(new TopicPartition(topic, p.partition()));
            } else {
                for (JsonNode p : parts) tps.add(new TopicPartition(topic, p.asInt()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            int n = 0;
            StringBuilder sb = new StringBuilder();
            while (n < expected) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) break;
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(500, left)))) {
                    sb.setLength(0);
                    sb.append(r.partition()).append('\t').append(r.offset()).append('\t')
                      .append(r.timestamp()).append('\t').append(b64(r.key())).append('\t')
                      .append(b64(r.value())).append('\t');
                    boolean first = true;
                    for (Header h : r.headers()) {
                        if (!first) sb.append(',');
                        first = false;
                        sb.append(B64.encodeToString(h.key().getBytes(StandardCharsets.UTF_8)))
                          .append(':').append(b64(h.value()));
                    }
                    out.println(sb);
                    n++;
                }
            }
        }
    }

    // ------------------------------------------------------------------ admin

    static Admin admin(String bootstrap) {
        return ADMINS.computeIfAbsent(bootstrap, b -> {
            Properties props = new Properties();
            props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, b);
            return Admin.create(props);
        });
    }

    static void createTopic(JsonNode req, String bootstrap) throws Exception {
        JsonNode rf = req.get("replication_factor");
        NewTopic topic = new NewTopic(req.get("topic").asText(), Optional.of(req.get("partitions").asInt()),
                rf == null || rf.isNull() ? Optional.empty() : Optional.of((short) rf.asInt()));
        Map<String, String> configs = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = req.get("config").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            configs.put(e.getKey(), e.getValue().asText());
        }
        topic.configs(configs);
        admin(bootstrap).createTopics(List.of(topic),
                new CreateTopicsOptions().validateOnly(req.get("validate_only").asBoolean())).all().get();
    }

    static void describeTopic(JsonNode req, String bootstrap, ObjectNode status) throws Exception {
        String name = req.get("topic").asText();
        Admin admin = admin(bootstrap);
        TopicDescription td = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
        status.put("partitions", td.partitions().size());
        status.put("replication_factor", td.partitions().isEmpty() ? 0 : td.partitions().get(0).replicas().size());
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, name);
        Config config = admin.describeConfigs(List.of(res)).all().get().get(res);
        ObjectNode configs = status.putObject("configs");
        for (ConfigEntry e : config.entries()) configs.put(e.name(), e.value());
    }

    static void alterTopicConfig(JsonNode req, String bootstrap) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, req.get("topic").asText());
        Collection<AlterConfigOp> ops = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = req.get("changes").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getValue().isNull()) {
                ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), null), AlterConfigOp.OpType.DELETE));
            } else {
                ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue().asText()), AlterConfigOp.OpType.SET));
            }
        }
        admin(bootstrap).incrementalAlterConfigs(Map.of(res, ops)).all().get();
    }

    // ------------------------------------------------------------------ errors

    static ObjectNode errorJson(Throwable t) {
        Throwable c = t;
        while ((c instanceof ExecutionException || c instanceof CompletionException) && c.getCause() != null) {
            c = c.getCause();
        }
        ObjectNode e = JSON.createObjectNode();
        if (c instanceof ApiException) {
            Errors err = Errors.forException(c);
            e.put("name", err.name());
            e.put("code", (int) err.code());
        } else {
            e.put("name", c.getClass().getSimpleName());
            e.putNull("code");
        }
        e.put("message", String.valueOf(c.getMessage()));
        return e;
    }
}
