// A stream-app recorder with the plain Apache Kafka Java client: publishes a WAV file (16-bit PCM)
// or raw s16le PCM as one stream of audio chunks (CloudEvents binary mode, docs/streaming-api.md).
//
// No build step: Java 17+ runs a single source file. With the jars the local stack already fetched:
//
//   java -cp "$HOME/.cache/stream-app/local/kafka-4.1.1/libs/*" examples/java/Recorder.java \
//       --stream-id mic-7 talk.wav
//
// Options:
//   --stream-id ID            the stream id, used as the record key (required)
//   --bootstrap-servers H:P   Kafka (default 127.0.0.1:9092)
//   --topic NAME              the chunks topic (default audio.chunks)
//   --chunk-ms N              audio per chunk in milliseconds (default 100)
//   --rate HZ --channels N    layout of a raw PCM file (default 16000 and 1); a WAV file says its own
//   --fast                    send as fast as possible instead of at the audio's own pace
//   --client-config FILE      extra producer properties (security: SASL_SSL, truststore), merged last
//
// Exit status: 0 when the broker acknowledged every chunk, 1 when one was not, 2 for bad arguments.

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Recorder {
    static final String EVENT_TYPE = "dev.stream-app.audio.chunk";
    static final String SOURCE = "urn:example:java-recorder";

    /** The PCM layout of the input and where its samples start. */
    record Pcm(int rate, int channels, InputStream samples) {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> opts = new HashMap<>();
        List<String> files = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (arg.equals("--fast")) {
                opts.put("fast", "true");
            } else if (arg.startsWith("--") && i + 1 < argv.length) {
                opts.put(arg.substring(2), argv[++i]);
            } else if (arg.startsWith("--")) {
                usage("option " + arg + " needs a value");
            } else {
                files.add(arg);
            }
        }
        String streamId = opts.get("stream-id");
        if (streamId == null || streamId.isBlank() || files.size() != 1) {
            usage("give --stream-id and one audio file");
        }
        String topic = opts.getOrDefault("topic", "audio.chunks");
        double chunkMs = Double.parseDouble(opts.getOrDefault("chunk-ms", "100"));
        boolean realtime = !opts.containsKey("fast");
        Path file = Path.of(files.get(0));

        Pcm pcm = open(file, Integer.parseInt(opts.getOrDefault("rate", "16000")),
                Integer.parseInt(opts.getOrDefault("channels", "1")));
        if (pcm.rate() < 8000 || pcm.rate() > 192000 || pcm.channels() < 1 || pcm.channels() > 8) {
            usage(pcm.rate() + " Hz x " + pcm.channels() + " channels: the service takes 8000..192000 Hz and"
                    + " 1..8 channels");
        }
        int frameBytes = 2 * pcm.channels();
        int framesPerChunk = (int) Math.max(1, Math.round(pcm.rate() * chunkMs / 1000.0));
        String contentType = "audio/pcm; encoding=s16le; rate=" + pcm.rate() + "; channels=" + pcm.channels();

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, opts.getOrDefault("bootstrap-servers", "127.0.0.1:9092"));
        props.put(ProducerConfig.ACKS_CONFIG, "all");  // acknowledged by every in-sync replica
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");  // retries keep order, never duplicate
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "300000");  // ride out a 5-minute broker outage
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "example-java-recorder");
        if (opts.containsKey("client-config")) {
            try (Reader reader = Files.newBufferedReader(Path.of(opts.get("client-config")))) {
                props.load(reader);
            }
        }

        AtomicReference<Exception> failure = new AtomicReference<>();
        AtomicInteger acknowledged = new AtomicInteger();
        TreeSet<Integer> partitions = new TreeSet<>();
        long seq = 0;
        long offset = 0;  // stream position of the next chunk's first sample, in frames at pcm.rate()
        long started = System.nanoTime();
        try (KafkaProducer<String, byte[]> producer =
                new KafkaProducer<>(props, new StringSerializer(), new ByteArraySerializer());
                InputStream in = pcm.samples()) {
            byte[] next = readChunk(in, framesPerChunk * frameBytes, frameBytes);
            do {
                byte[] chunk = next;
                next = chunk.length == 0 ? new byte[0] : readChunk(in, framesPerChunk * frameBytes, frameBytes);
                boolean last = next.length == 0;  // the chunk after this one is empty: this is the end
                long frames = chunk.length / frameBytes;
                if (realtime) {  // a live recorder has a chunk only once its audio was captured
                    long due = started + Math.round((offset + frames) * 1e9 / pcm.rate());
                    long waitNanos = due - System.nanoTime();
                    if (waitNanos > 0) {
                        Thread.sleep(waitNanos / 1_000_000, (int) (waitNanos % 1_000_000));
                    }
                }
                ProducerRecord<String, byte[]> record = new ProducerRecord<>(topic, streamId, chunk);
                Headers headers = record.headers();
                headers.add("ce_specversion", utf8("1.0"));
                headers.add("ce_id", utf8(UUID.randomUUID().toString()));
                headers.add("ce_source", utf8(SOURCE));
                headers.add("ce_type", utf8(EVENT_TYPE));
                headers.add("ce_time", utf8(DateTimeFormatter.ISO_INSTANT.format(
                        Instant.now().truncatedTo(ChronoUnit.MILLIS))));
                headers.add("content-type", utf8(contentType));
                headers.add("ce_seq", utf8(Long.toString(seq)));
                headers.add("ce_streamoffset", utf8(Long.toString(offset)));
                headers.add("ce_endofstream", utf8(last ? "true" : "false"));
                producer.send(record, (metadata, error) -> {
                    if (error != null) {
                        failure.compareAndSet(null, error);
                    } else {
                        acknowledged.incrementAndGet();
                        synchronized (partitions) {
                            partitions.add(metadata.partition());
                        }
                    }
                });
                seq++;
                offset += frames;
                if (failure.get() != null) {
                    break;  // the stream already has a hole: stop, as ChunkPublisher does
                }
            } while (next.length > 0);
            producer.flush();
        }
        if (failure.get() != null || acknowledged.get() != seq) {
            System.err.printf("stream %s: %d of %d chunks not delivered to %s: %s%n", streamId,
                    seq - acknowledged.get(), seq, topic, failure.get());
            System.exit(1);
        }
        System.out.printf("published stream %s: %d chunks, %.2f s of audio to %s (partition %s)%n", streamId, seq,
                (double) offset / pcm.rate(), topic, partitions.isEmpty() ? "-" : partitions.first());
    }

    /** Open a WAV file (its header gives the layout) or raw s16le PCM (the layout comes from the options). */
    static Pcm open(Path file, int rawRate, int rawChannels) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(file));
        in.mark(12);
        byte[] magic = in.readNBytes(12);
        boolean wav = magic.length == 12 && new String(magic, 0, 4, StandardCharsets.US_ASCII).equals("RIFF")
                && new String(magic, 8, 4, StandardCharsets.US_ASCII).equals("WAVE");
        if (!wav) {
            in.reset();
            return new Pcm(rawRate, rawChannels, in);
        }
        DataInputStream data = new DataInputStream(in);
        int rate = -1;
        int channels = -1;
        while (true) {  // RIFF chunks: "fmt " says the layout, "data" holds the samples
            String id = new String(data.readNBytes(4), StandardCharsets.US_ASCII);
            if (id.length() < 4) {
                throw new EOFException(file + ": no data chunk in the WAV file");
            }
            long size = Integer.toUnsignedLong(Integer.reverseBytes(data.readInt()));
            if (id.equals("fmt ")) {
                ByteBuffer fmt = ByteBuffer.wrap(data.readNBytes((int) size)).order(ByteOrder.LITTLE_ENDIAN);
                int format = Short.toUnsignedInt(fmt.getShort(0));
                channels = Short.toUnsignedInt(fmt.getShort(2));
                rate = fmt.getInt(4);
                int bits = Short.toUnsignedInt(fmt.getShort(14));
                boolean pcm = format == 1 || (format == 0xFFFE && size >= 26 && fmt.getShort(24) == 1);
                if (!pcm || bits != 16) {
                    throw new IOException(file + ": only 16-bit PCM WAV files are read (format " + format
                            + ", " + bits + " bits)");
                }
            } else if (id.equals("data")) {
                if (rate < 0) {
                    throw new IOException(file + ": the data chunk comes before the fmt chunk");
                }
                // a streamed WAV may leave the size at 0 or 0xFFFFFFFF: then read to the end of the file
                long bytes = size == 0 || size == 0xFFFFFFFFL ? -1 : size;
                return new Pcm(rate, channels, bytes < 0 ? data : limited(data, bytes));
            } else {
                data.skipNBytes(size + (size & 1));  // chunks are padded to an even length
            }
        }
    }

    /** Read up to {@code bytes} bytes, cut to whole frames; an empty array at the end of the input. */
    static byte[] readChunk(InputStream in, int bytes, int frameBytes) throws IOException {
        byte[] buffer = in.readNBytes(bytes);
        int whole = buffer.length - buffer.length % frameBytes;  // a truncated last frame is dropped
        return whole == buffer.length ? buffer : Arrays.copyOf(buffer, whole);
    }

    static InputStream limited(InputStream in, long bytes) {
        return new InputStream() {
            long left = bytes;

            @Override
            public int read() throws IOException {
                if (left <= 0) {
                    return -1;
                }
                int b = in.read();
                if (b >= 0) {
                    left--;
                }
                return b;
            }

            @Override
            public int read(byte[] buffer, int off, int len) throws IOException {
                if (left <= 0) {
                    return -1;
                }
                int n = in.read(buffer, off, (int) Math.min(len, left));
                if (n > 0) {
                    left -= n;
                }
                return n;
            }

            @Override
            public void close() throws IOException {
                in.close();
            }
        };
    }

    static byte[] utf8(String value) {
        return value.getBytes(StandardCharsets.UTF_8);
    }

    static void usage(String problem) {
        System.err.println("Recorder: " + problem);
        System.err.println("usage: java -cp '<kafka libs>/*' Recorder.java --stream-id ID [--bootstrap-servers H:P]"
                + " [--topic T] [--chunk-ms N] [--rate HZ --channels N] [--fast] [--client-config FILE] FILE");
        System.exit(2);
    }
}
