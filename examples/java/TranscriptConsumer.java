// A stream-app transcript consumer with the plain Apache Kafka Java client: prints one stream's final
// segments as they arrive and its whole text at its end of stream. It applies the contract's one rule
// (schemas/transcript-segment.v3.json): per segment_id keep the record with the highest revision; a
// final's revision is above every interim of its id, so a final is never replaced, and a replay (same
// id, same revision) changes nothing. Records of schemas v2 and v1 (published before an upgrade; their
// finals carry revision 0) are read too: such a final ranks above every interim of its id, as a v3 final
// does, and a v1 record (no session, no gaps) belongs to session "0".
// The segment JSON is read by the small parser at the bottom.
//
// No build step: Java 17+ runs a single source file. With the jars the local stack already fetched:
//
//   java -cp "$HOME/.cache/stream-app/local/kafka-4.1.1/libs/*" examples/java/TranscriptConsumer.java \
//       --stream-id mic-7
//
// Options:
//   --stream-id ID            the stream to follow (required)
//   --bootstrap-servers H:P   Kafka (default 127.0.0.1:9092)
//   --topic NAME              the transcripts topic (default transcripts)
//   --from-beginning          read the topic's history too (default: only segments published from now on)
//   --timeout S               give up after S seconds (default: wait forever)
//   --client-config FILE      extra consumer properties (security: SASL_SSL, truststore), merged last
//
// It joins no consumer group and commits nothing (manual assignment of every partition), so any number
// of consumers can run beside the workers. Exit status: 0 at the end of the stream, 1 on timeout.

import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class TranscriptConsumer {
    public static void main(String[] argv) throws Exception {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (argv[i].equals("--from-beginning")) {
                opts.put("from-beginning", "true");
            } else if (argv[i].startsWith("--") && i + 1 < argv.length) {
                opts.put(argv[i].substring(2), argv[++i]);
            } else {
                usage("unexpected argument " + argv[i]);
            }
        }
        String streamId = opts.get("stream-id");
        if (streamId == null || streamId.isBlank()) {
            usage("give --stream-id");
        }
        String topic = opts.getOrDefault("topic", "transcripts");
        long deadline = opts.containsKey("timeout")
                ? System.nanoTime() + Math.round(Double.parseDouble(opts.get("timeout")) * 1e9)
                : Long.MAX_VALUE;

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, opts.getOrDefault("bootstrap-servers", "127.0.0.1:9092"));
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "example-java-transcripts");
        if (opts.containsKey("client-config")) {
            try (Reader reader = Files.newBufferedReader(Path.of(opts.get("client-config")))) {
                props.load(reader);
            }
        }

        // finals by (session, index): the order of the stream's transcript, whatever order replays come in
        TreeMap<SegmentKey, String> finals = new TreeMap<>();
        Map<String, Long> best = new HashMap<>();  // segment_id -> the highest rank seen (see Segment.rank)
        SegmentKey latest = null;
        boolean ended = false;
        try (KafkaConsumer<String, byte[]> consumer =
                new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo info : waitForTopic(consumer, topic, deadline)) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(partitions);
            if (opts.containsKey("from-beginning")) {
                consumer.seekToBeginning(partitions);
            } else {
                consumer.seekToEnd(partitions);
            }
            for (TopicPartition partition : partitions) {
                consumer.position(partition);  // resolve "the end" now: nothing published after this is missed
            }
            System.err.printf("listening to %s on %s (%d partitions) for stream %s%n", topic,
                    props.get(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG), partitions.size(), streamId);

            while (!ended && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(500))) {
                    if (!streamId.equals(record.key()) || record.value() == null) {
                        continue;  // the key is the stream id: other streams share the partitions
                    }
                    Segment segment;
                    try {
                        segment = Segment.parse(new String(record.value(), StandardCharsets.UTF_8));
                    } catch (RuntimeException error) {  // not JSON, or not a segment (schema breach)
                        System.err.printf("skipping %s-%d@%d: %s%n", record.topic(), record.partition(),
                                record.offset(), error);
                        continue;
                    }
                    if (latest == null || SegmentKey.compareSessions(segment.key().session(), latest.session()) > 0) {
                        latest = segment.key();  // a stream that comes back after its end continues in a later session
                    }
                    if (segment.endOfStream()
                            && SegmentKey.compareSessions(segment.key().session(), latest.session()) == 0) {
                        ended = true;  // printed below the first time it is seen
                    }
                    // keep the highest revision per segment_id: a record at or below the best one seen is a
                    // replay (at-least-once delivery) or a stale interim and changes nothing
                    Long seen = best.get(segment.id());
                    if (seen != null && seen >= segment.rank()) {
                        continue;
                    }
                    best.put(segment.id(), segment.rank());
                    // interims are not printed: the final with the same segment_id replaces them
                    if (segment.isFinal()) {
                        finals.put(segment.key(), segment.text());
                        System.out.printf("[%8.2f - %8.2f] %s%s%n", segment.start(), segment.end(), segment.text(),
                                segment.notes());
                    }
                }
            }
        }
        List<String> texts = new ArrayList<>();
        for (String text : finals.values()) {
            if (!text.isEmpty()) {
                texts.add(text);
            }
        }
        System.out.println("transcript: " + String.join(" ", texts));
        if (!ended) {
            System.err.println("TranscriptConsumer: timed out before the end of the stream");
            System.exit(1);
        }
    }

    static List<PartitionInfo> waitForTopic(KafkaConsumer<String, byte[]> consumer, String topic, long deadline)
            throws InterruptedException {
        while (true) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
            if (infos != null && !infos.isEmpty()) {
                return infos;
            }
            if (System.nanoTime() >= deadline) {
                System.err.println("TranscriptConsumer: topic " + topic + " does not exist");
                System.exit(1);
            }
            Thread.sleep(500);
        }
    }

    /** A v1 or v2 final (revision 0) ranks above every interim of its id, as a v3 final does by its revision. */
    static final long V2_FINAL_REVISION = 1L << 30;

    /** The fields of a transcript segment this program uses (the JSON has more: words, model, ...). */
    record Segment(String id, SegmentKey key, boolean isFinal, long rank, boolean endOfStream, double start,
            double end, String text, String notes) {
        /** Parse one record value; a RuntimeException when it is not JSON or lacks a field. */
        static Segment parse(String json) {
            Map<String, Object> doc = Json.object(json);
            long version = ((Number) doc.get("schema_version")).longValue();
            if (version < 1 || version > 3) {
                throw new IllegalArgumentException("schema_version " + version + " (this program reads 1 to 3)");
            }
            boolean isFinal = (Boolean) doc.get("is_final");
            long revision = ((Number) doc.get("revision")).longValue();
            long rank = isFinal && version < 3 ? V2_FINAL_REVISION + revision : revision;
            String session = version < 2 ? "0" : (String) doc.get("session");
            SegmentKey key = new SegmentKey(session, ((Number) doc.get("index")).longValue());
            SegmentKey.compareSessions(key.session(), key.session());  // "<partition>.<offset>" or "0"
            boolean endOfStream = (Boolean) doc.get("end_of_stream");
            StringBuilder notes = new StringBuilder();  // spans not transcribed and why, as `stream-app tail` shows
            for (Object item : version < 2 ? List.of() : (List<?>) doc.get("gaps")) {
                Map<?, ?> gap = (Map<?, ?>) item;
                notes.append(String.format("  <%s: %.2f-%.2f s not transcribed>", gap.get("reason"),
                        ((Number) gap.get("start")).doubleValue(), ((Number) gap.get("end")).doubleValue()));
            }
            if (endOfStream) {
                notes.append("  <end of stream>");
            }
            return new Segment((String) doc.get("segment_id"), key, isFinal, rank, endOfStream,
                    ((Number) doc.get("start")).doubleValue(), ((Number) doc.get("end")).doubleValue(),
                    ((String) doc.get("text")).strip(), notes.toString());
        }
    }

    /** A final segment's place in its stream: the session ("partition.offset"), then the index in it. */
    record SegmentKey(String session, long index) implements Comparable<SegmentKey> {
        static int compareSessions(String a, String b) {
            String[] x = a.split("\\.");
            String[] y = b.split("\\.");
            for (int i = 0; i < Math.min(x.length, y.length); i++) {
                int c = Long.compare(Long.parseLong(x[i]), Long.parseLong(y[i]));
                if (c != 0) {
                    return c;
                }
            }
            return Integer.compare(x.length, y.length);
        }

        @Override
        public int compareTo(SegmentKey other) {
            int c = compareSessions(session, other.session);
            return c != 0 ? c : Long.compare(index, other.index);
        }
    }

    static void usage(String problem) {
        System.err.println("TranscriptConsumer: " + problem);
        System.err.println("usage: java -cp '<kafka libs>/*' TranscriptConsumer.java --stream-id ID"
                + " [--bootstrap-servers H:P] [--topic T] [--from-beginning] [--timeout S] [--client-config FILE]");
        System.exit(2);
    }

    /** Just enough JSON: objects, arrays, strings (with escapes), numbers, true, false, null. */
    static final class Json {
        private final String text;
        private int at;

        private Json(String text) {
            this.text = text;
        }

        /** Parse a JSON object; IllegalArgumentException for anything else or malformed input. */
        static Map<String, Object> object(String text) {
            Json parser = new Json(text);
            Object value = parser.value();
            parser.space();
            if (parser.at != text.length() || !(value instanceof Map)) {
                throw new IllegalArgumentException("not a JSON object");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) value;
            return map;
        }

        private Object value() {
            space();
            if (at >= text.length()) {
                throw fail("unexpected end");
            }
            char c = text.charAt(at);
            switch (c) {
                case '{':
                    return members();
                case '[':
                    return elements();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    return number();
            }
        }

        private Map<String, Object> members() {
            Map<String, Object> map = new LinkedHashMap<>();
            at++;  // {
            space();
            if (peek('}')) {
                return map;
            }
            do {
                space();
                String name = string();
                space();
                expect(':');
                map.put(name, value());
                space();
            } while (peek(','));
            expect('}');
            return map;
        }

        private List<Object> elements() {
            List<Object> list = new ArrayList<>();
            at++;  // [
            space();
            if (peek(']')) {
                return list;
            }
            do {
                list.add(value());
                space();
            } while (peek(','));
            expect(']');
            return list;
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (at < text.length()) {
                char c = text.charAt(at++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (at >= text.length()) {
                    break;
                }
                char e = text.charAt(at++);
                switch (e) {
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'n' -> out.append('\n');
                    case 'r' -> out.append('\r');
                    case 't' -> out.append('\t');
                    case 'u' -> {
                        if (at + 4 > text.length()) {
                            throw fail("short \\u escape");
                        }
                        out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                        at += 4;
                    }
                    default -> out.append(e);  // \" \\ \/
                }
            }
            throw fail("unterminated string");
        }

        private Number number() {
            int start = at;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) {
                at++;
            }
            String raw = text.substring(start, at);
            try {
                if (raw.contains(".") || raw.contains("e") || raw.contains("E")) {
                    return Double.parseDouble(raw);
                }
                return Long.parseLong(raw);
            } catch (NumberFormatException error) {
                throw fail("bad value '" + raw + "'");
            }
        }

        private Object literal(String word, Object value) {
            if (!text.startsWith(word, at)) {
                throw fail("bad literal");
            }
            at += word.length();
            return value;
        }

        private void space() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) {
                at++;
            }
        }

        private boolean peek(char c) {
            if (at < text.length() && text.charAt(at) == c) {
                at++;
                return true;
            }
            return false;
        }

        private void expect(char c) {
            if (!peek(c)) {
                throw fail("expected '" + c + "'");
            }
        }

        private IllegalArgumentException fail(String problem) {
            return new IllegalArgumentException("JSON: " + problem + " at character " + at);
        }
    }
}
