// Operations of the compatibility suite that tests/clients/JavaClient.java does not have:
// ListOffsets by spec, DeleteRecords, consumer groups (join + commit, describe, offsets,
// list, delete), all through the Apache Kafka Java client with its default settings.
//
// Launched by bench/compat/extras.py with Java's single-file source launcher and spoken
// to with the line protocol of tests/clients/wire.py (one JSON request per line; the
// answer is one status line "#{...}").

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
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class JavaCompat {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Map<String, Admin> ADMINS = new HashMap<>();
    static PrintWriter out;

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(
                new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8)));
        System.setOut(System.err);
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            JsonNode req = JSON.readTree(line);
            ObjectNode status = JSON.createObjectNode();
            try {
                handle(req, status);
                status.put("ok", true);
            } catch (Throwable t) {
                status.removeAll();
                status.put("ok", false);
                status.set("error", errorJson(t));
            }
            out.print("#");
            out.println(JSON.writeValueAsString(status));
            out.flush();
        }
        for (Admin a : ADMINS.values()) a.close(Duration.ofSeconds(5));
    }

    static Admin admin(String bootstrap) {
        return ADMINS.computeIfAbsent(bootstrap, b -> {
            Properties props = new Properties();
            props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, b);
            return Admin.create(props);
        });
    }

    static void handle(JsonNode req, ObjectNode status) throws Exception {
        String op = req.get("op").asText();
        String bootstrap = req.get("bootstrap").asText();
        switch (op) {
            case "list_offsets": listOffsets(req, bootstrap, status); break;
            case "delete_records": {
                TopicPartition tp = new TopicPartition(req.get("topic").asText(), req.get("partition").asInt());
                long low = admin(bootstrap).deleteRecords(Map.of(tp,
                        RecordsToDelete.beforeOffset(req.get("before").asLong())))
                        .lowWatermarks().get(tp).get().lowWatermark();
                status.put("low_watermark", low);
                break;
            }
            case "group_run": groupRun(req, bootstrap, status); break;
            case "describe_group":
                status.set("group", describeGroup(bootstrap, req.get("group").asText()));
                break;
            case "group_offsets": {
                Map<TopicPartition, OffsetAndMetadata> offsets = admin(bootstrap)
                        .listConsumerGroupOffsets(req.get("group").asText())
                        .partitionsToOffsetAndMetadata().get();
                ObjectNode o = status.putObject("offsets");
                for (Map.Entry<String, OffsetAndMetadata> e : new TreeMap<>(stringKeys(offsets)).entrySet()) {
                    o.put(e.getKey(), e.getValue() == null ? -1 : e.getValue().offset());
                }
                break;
            }
            case "list_groups": {
                ArrayNode groups = status.putArray("groups");
                for (GroupListing g : admin(bootstrap).listGroups().all().get()) {
                    ObjectNode n = groups.addObject();
                    n.put("group", g.groupId());
                    n.put("state", g.groupState().map(Object::toString).orElse(null));
                    n.put("type", g.type().map(Object::toString).orElse(null));
                    n.put("protocol", g.protocol());
                }
                break;
            }
            case "delete_group":
                admin(bootstrap).deleteConsumerGroups(List.of(req.get("group").asText())).all().get();
                break;
            default: throw new IllegalArgumentException("unknown op " + op);
        }
    }

    static Map<String, OffsetAndMetadata> stringKeys(Map<TopicPartition, OffsetAndMetadata> m) {
        Map<String, OffsetAndMetadata> out = new HashMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : m.entrySet()) {
            out.put(e.getKey().topic() + ":" + e.getKey().partition(), e.getValue());
        }
        return out;
    }

    static void listOffsets(JsonNode req, String bootstrap, ObjectNode status) throws Exception {
        TopicPartition tp = new TopicPartition(req.get("topic").asText(), req.get("partition").asInt());
        String spec = req.get("spec").asText();
        OffsetSpec s;
        switch (spec) {
            case "earliest": s = OffsetSpec.earliest(); break;
            case "latest": s = OffsetSpec.latest(); break;
            case "max_timestamp": s = OffsetSpec.maxTimestamp(); break;
            case "timestamp": s = OffsetSpec.forTimestamp(req.get("timestamp").asLong()); break;
            default: throw new IllegalArgumentException("unknown spec " + spec);
        }
        ListOffsetsResult.ListOffsetsResultInfo info = admin(bootstrap).listOffsets(Map.of(tp, s)).partitionResult(tp).get();
        status.put("offset", info.offset());
        status.put("timestamp", info.timestamp());
    }

    // Subscribe with a group, read `expected` records, commit the given offsets, describe
    // the group while still a member, then leave (close).
    static void groupRun(JsonNode req, String bootstrap, ObjectNode status) throws Exception {
        String topic = req.get("topic").asText();
        String group = req.get("group").asText();
        int expected = req.get("expected").asInt();
        long deadline = System.currentTimeMillis() + req.get("timeout_ms").asLong();
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        int n = 0;
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            while (n < expected && System.currentTimeMillis() < deadline) {
                n += consumer.poll(Duration.ofMillis(200)).count();
            }
            Map<TopicPartition, OffsetAndMetadata> commits = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = req.get("commits").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                commits.put(new TopicPartition(topic, Integer.parseInt(e.getKey())),
                        new OffsetAndMetadata(e.getValue().asLong()));
            }
            consumer.commitSync(commits);
            status.put("consumed", n);
            status.set("during", describeGroup(bootstrap, group));
            try {
                admin(bootstrap).deleteConsumerGroups(List.of(group)).all().get();
                status.put("delete_while_active", "ok");
            } catch (Exception ex) {
                status.put("delete_while_active", "error " + errorJson(ex).get("name").asText());
            }
        }
    }

    static ObjectNode describeGroup(String bootstrap, String group) throws Exception {
        ConsumerGroupDescription d = admin(bootstrap).describeConsumerGroups(List.of(group))
                .describedGroups().get(group).get();
        ObjectNode g = JSON.createObjectNode();
        g.put("state", d.groupState() == null ? null : d.groupState().toString());
        g.put("assignor", d.partitionAssignor());
        g.put("simple", d.isSimpleConsumerGroup());
        g.put("type", d.type() == null ? null : d.type().toString());
        g.put("coordinator", d.coordinator() == null ? null : d.coordinator().id());
        ArrayNode members = g.putArray("members");
        for (MemberDescription m : d.members()) {
            ObjectNode mn = members.addObject();
            mn.put("client_id", m.clientId());
            mn.put("host", m.host());
            mn.put("member_id_set", m.consumerId() != null && !m.consumerId().isEmpty());
            ArrayNode a = mn.putArray("assignment");
            List<String> tps = new ArrayList<>();
            for (TopicPartition tp : m.assignment().topicPartitions()) tps.add(tp.topic() + ":" + tp.partition());
            tps.sort(null);
            for (String s : tps) a.add(s);
        }
        return g;
    }

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
