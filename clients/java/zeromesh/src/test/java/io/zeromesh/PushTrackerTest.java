// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/** PushTracker without sockets: what it sends, and that every job it takes settles exactly once. */
class PushTrackerTest {
    private static final long RESEND = 2_000_000_000L;
    private static final long TIMEOUT = 10_000_000_000L;

    private final List<Message> sent = new ArrayList<>();
    private boolean queueFull;
    private final IdGenerator ids = new IdGenerator();
    private final PushTracker tracker = new PushTracker(frames -> {
        if (queueFull) {
            return false;
        }
        sent.add(Codec.unpack(frames));
        return true;
    }, "tcp://test", RESEND, Defaults.PUSH_BATCH, ids);

    /** n jobs of one pushMany chunk as the caller hands them over: one PUSH_PACKED message. */
    private List<PendingPush> takeBatch(int n, long now) {
        BatchGroup group = new BatchGroup("q", Map.of());
        List<PendingPush> jobs = new ArrayList<>();
        List<String> jobIds = new ArrayList<>();
        List<byte[]> bodies = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            PendingPush p = new PendingPush(ids.next(), null, group, ("job " + i).getBytes(UTF_8), TIMEOUT);
            jobs.add(p);
            jobIds.add(p.id);
            bodies.add(p.body);
        }
        String batchId = ids.next();
        tracker.take(new ClientOp.Push(jobs, batchId, Wire.PUSH_PACKED, group.packedHeader(batchId, jobIds, bodies)), now);
        return jobs;
    }

    /** Why the push failed (it must have). */
    private static Throwable failure(PendingPush p) {
        assertTrue(p.result.isDone(), "settled");
        return assertThrows(ExecutionException.class, p.result::get).getCause();
    }

    private static List<String> idsOf(List<PendingPush> jobs) {
        return jobs.stream().map(p -> p.id).toList();
    }

    @Test
    void aConfirmNamingTheMessageSettlesEachOfItsJobs() throws Exception {
        List<PendingPush> jobs = takeBatch(3, 0);
        assertEquals(1, sent.size());
        Message packed = sent.get(0);
        assertEquals(Wire.PUSH_PACKED, packed.command());
        assertEquals(idsOf(jobs), packed.header().get("ids"));
        tracker.confirmed(Map.of("ids", List.of(), "batches", List.of(packed.header().get("id"))));
        for (PendingPush p : jobs) {
            assertEquals(p.id, p.result.get());
        }
        assertTrue(tracker.isEmpty());
        assertFalse(tracker.refused((String) packed.header().get("id"), Map.of("code", "queue_full")),
                "a settled message is not refused again");
    }

    @Test
    void unconfirmedJobsGoAgainWithTheSameIdsUnderANewMessageId() {
        queueFull = true; // the first send is lost: only the resend carries them
        List<PendingPush> jobs = takeBatch(2, 0);
        queueFull = false;
        tracker.tick(RESEND - 1, since -> false);
        assertTrue(sent.isEmpty(), "not before the resend interval");
        tracker.tick(RESEND, since -> false);
        assertEquals(1, sent.size());
        assertEquals(Wire.PUSH_PACKED, sent.get(0).command());
        assertEquals(idsOf(jobs), sent.get(0).header().get("ids"));
        tracker.tick(RESEND + 1, since -> false);
        assertEquals(1, sent.size(), "one resend per interval");
        tracker.tick(2 * RESEND, since -> false);
        assertNotEquals(sent.get(0).header().get("id"), sent.get(1).header().get("id"));
        assertEquals(idsOf(jobs), sent.get(1).header().get("ids"));
    }

    @Test
    void aPushPastItsTimeoutFailsListingItselfUnconfirmed() {
        PendingPush p = takeBatch(1, 0).get(0);
        tracker.tick(TIMEOUT, since -> false);
        ZeromeshTimeoutException timeout = assertInstanceOf(ZeromeshTimeoutException.class, failure(p));
        assertEquals(List.of(p.id), timeout.getUnconfirmed().stream().map(UnconfirmedJob::id).toList());
        assertTrue(tracker.isEmpty());
        tracker.confirmed(Map.of("ids", List.of(p.id)));
        assertTrue(p.result.isCompletedExceptionally(), "a late CONFIRM changes nothing");
    }

    @Test
    void anUnreachableBrokerFailsThePushes() {
        PendingPush p = takeBatch(1, 0).get(0);
        tracker.tick(1, since -> since == 0);
        assertInstanceOf(UnreachableException.class, failure(p));
        assertTrue(tracker.isEmpty());
    }

    @Test
    void unknownCommandStepsDownOneFormAndSendsTheJobsAgainAtOnce() throws Exception {
        List<PendingPush> jobs = takeBatch(2, 0);
        String packedId = (String) sent.get(0).header().get("id");
        assertTrue(tracker.refused(packedId, Map.of("code", Wire.E_UNKNOWN_COMMAND, "message", "unknown command")));
        assertEquals(2, sent.size());
        Message batch = sent.get(1);
        assertEquals(Wire.PUSH_BATCH, batch.command());
        assertEquals(idsOf(jobs), batch.header().get("ids"));
        tracker.confirmed(Map.of("ids", List.of(jobs.get(0).id), "batches", List.of()));
        tracker.confirmed(Map.of("ids", List.of(), "batches", List.of(batch.header().get("id"))));
        assertEquals(jobs.get(0).id, jobs.get(0).result.get());
        assertEquals(jobs.get(1).id, jobs.get(1).result.get());
        assertTrue(tracker.isEmpty());
        List<PendingPush> later = takeBatch(1, 0);
        assertEquals(Wire.PUSH_BATCH, sent.get(2).command(), "later batches go in the form the broker takes");
        assertEquals(idsOf(later), sent.get(2).header().get("ids"));
    }

    @Test
    void anyOtherRefusalFailsEveryJobOfTheMessage() {
        List<PendingPush> jobs = takeBatch(2, 0);
        assertTrue(tracker.refused((String) sent.get(0).header().get("id"),
                Map.of("code", "queue_full", "message", "queue q is full")));
        for (PendingPush p : jobs) {
            assertInstanceOf(QueueFullException.class, failure(p));
        }
        assertTrue(tracker.isEmpty());
    }

    @Test
    void aUniquePushGoesAsPushAndADuplicateSettlesWithTheHoldersId() throws Exception {
        Map<String, Object> fields = PushOptions.builder().uniqueKey("card:9").uniqueTtl(java.time.Duration.ofSeconds(3))
                .build().fields(0);
        PendingPush dup = ClientFrames.push(ids.next(), "q", "one".getBytes(UTF_8), null, fields,
                java.time.Duration.ofSeconds(10));
        PendingPush queued = ClientFrames.push(ids.next(), "q", "two".getBytes(UTF_8), null, Map.of(),
                java.time.Duration.ofSeconds(10));
        tracker.take(new ClientOp.Push(List.of(dup)), 0);
        tracker.take(new ClientOp.Push(List.of(queued)), 0);
        Message push = sent.get(0);
        assertEquals(Wire.PUSH, push.command());
        assertEquals("card:9", push.header().get("unique_key"));
        assertEquals(3000L, ((Number) push.header().get("unique_ttl_ms")).longValue());
        tracker.confirmed(Map.of("ids", List.of(dup.id, queued.id), "duplicates", Map.of(dup.id, "holder-1")));
        assertEquals("holder-1", dup.result.get(), "the job that holds the key");
        assertEquals(queued.id, queued.result.get());
        assertTrue(tracker.isEmpty());
    }

    @Test
    void aScheduledBatchCarriesItsInstantInEveryForm() {
        BatchGroup group = new BatchGroup("q", Map.of(), PushOptions.builder()
                .at(java.time.Instant.ofEpochMilli(1_798_185_600_000L)).build().fields(0));
        List<String> jobIds = List.of("a", "b");
        List<byte[]> bodies = List.of("1".getBytes(UTF_8), "2".getBytes(UTF_8));
        Map<String, Object> packed = Codec.unpack(Codec.assemblePacked(Wire.PUSH_PACKED,
                group.packedHeader("m", jobIds, bodies), bodies)).header();
        assertEquals(1_798_185_600_000L, packed.get("at_ms"));
        assertEquals(1_798_185_600_000L, group.batchHeader("m", jobIds).get("at_ms"));
        assertEquals(1_798_185_600_000L, group.pushHeader("a").get("at_ms"), "as PUSH, to a broker without batches");
    }
}
