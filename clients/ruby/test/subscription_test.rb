# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

class GapTrackerTest < Minitest::Test
  def test_a_jump_within_an_epoch_is_a_gap_the_first_event_is_not
    gaps = Zeromesh::GapTracker.new
    assert_equal [false, false, true, false], [[5, "e"], [6, "e"], [8, "e"], [9, "e"]].map { |s, e| gaps.observe("t", s, e) }
  end

  def test_topics_count_separately
    gaps = Zeromesh::GapTracker.new
    assert_equal [false, false, false, false], [["a", 1], ["b", 7], ["a", 2], ["b", 8]].map { |t, s| gaps.observe(t, s, "e") }
  end

  def test_a_new_epoch_is_a_gap_once_anything_was_seen
    gaps = Zeromesh::GapTracker.new
    gaps.observe("t", 1, "e1")
    assert gaps.observe("t", 1, "e2")
    refute gaps.observe("t", 2, "e2")
  end

  def test_brokers_are_tracked_apart
    gaps = Zeromesh::GapTracker.new
    assert_equal [false, false, false, true, false],
                 [["t", 1, "e1", "a"], ["t", 9, "f1", "b"], ["t", 2, "e1", "a"], ["t", 1, "e2", "a"], ["t", 10, "f1", "b"]]
                   .map { |t, s, e, b| gaps.observe(t, s, e, b) }
  end
end

# Events that name their broker, from a raw PUB socket standing in for two
# brokers of a mesh: each broker's sequence is checked apart.
class SubscriptionBrokerFieldTest < Minitest::Test
  include TestSupport

  def setup
    @ctx = ZMQ::Context.new
    @pub = Zeromesh::Sockets.socket(@ctx, ZMQ::PUB)
    @endpoint = "tcp://127.0.0.1:#{TestSupport.free_port}"
    Zeromesh::Sockets.check(@pub.bind(@endpoint), "bind")
    @sub = Zeromesh::Subscription.new(@ctx, @endpoint, ["t"])
  end

  def teardown
    @sub.close
    @pub.close
    @ctx.terminate
  end

  def publish(seq, epoch, broker)
    header = { "id" => SecureRandom.hex(8), "topic" => "t", "seq" => seq, "epoch" => epoch }
    header["broker"] = broker if broker
    Zeromesh::Sockets.send_frames(@pub, Zeromesh::Codec.pack_event("t", header, "x".b))
  end

  def test_gaps_follow_the_broker_field
    # The slow joiner: publish a probe until the subscription is live; then the
    # probe's broker ("") was seen once or more, and "a" and "b" not yet.
    first = wait_until(5, "the subscription to be live") { publish(1, "p", nil) && @sub.next(timeout: 0.05) }
    assert_equal "", first.broker
    nil while @sub.next(timeout: 0.1)
    [[1, "e1", "a"], [7, "f1", "b"], [2, "e1", "a"], [1, "e2", "a"], [9, "f1", "b"]].each { |s, e, b| publish(s, e, b) }
    got = Array.new(5) { @sub.next(timeout: scaled(2)) }
    assert_equal [%w[a e1], %w[b f1], %w[a e1], %w[a e2], %w[b f1]], got.map { |ev| [ev.broker, ev.epoch] }
    assert_equal [false, false, false, true, true], got.map(&:gap?)
  end
end

# Publish through the real broker to a Ruby subscriber.
class SubscriptionLiveTest < Minitest::Test
  include TestSupport

  def setup
    @broker = TestSupport.broker
    @client = Zeromesh::Client.new(endpoint: @broker.endpoint, pub_endpoint: @broker.pub_endpoint)
    @topic = "news-#{SecureRandom.hex(3)}"
  end

  def teardown
    @client.close
  end

  # The slow joiner: a new SUB misses what was published before its
  # subscription reached the broker, so publish again until one arrives.
  def first_event(sub, topic, body, headers: nil)
    deadline = Zeromesh::Clock.now + scaled(5)
    while Zeromesh::Clock.now < deadline
      @client.publish(topic, body, headers: headers)
      event = sub.next(timeout: 0.1)
      return event if event
    end
    flunk "no event on #{topic} within 5s"
  end

  def test_publish_reaches_a_prefix_subscriber_with_sequence_and_headers
    sub = @client.subscribe("#{@topic}.")
    first = first_event(sub, "#{@topic}.sports", "goal!".b, headers: { "lang" => "en" })
    assert_equal ["#{@topic}.sports", "goal!", { "lang" => "en" }], [first.topic, first.body, first.headers]
    refute_empty first.epoch
    refute first.gap?, "the first event seen is never a gap"
    @client.publish("#{@topic}.sports", "again")
    @client.publish("other-#{@topic}", "not for us")
    nxt = sub.next(timeout: scaled(2))
    assert_equal ["again", first.seq + 1, false], [nxt.body, nxt.seq, nxt.gap?]
    assert_nil sub.next(timeout: 0.2), "a topic outside the prefix was delivered"
    sub.close
    assert sub.closed?
  end

  def test_block_form_yields_until_break_and_closes
    received = []
    publisher = Thread.new do
      deadline = Zeromesh::Clock.now + scaled(5)
      n = 0
      while Zeromesh::Clock.now < deadline && received.size < 3
        @client.publish(@topic, "e#{n += 1}")
        sleep 0.02
      end
    end
    @client.subscribe(@topic) do |event|
      received << event
      break if received.size == 3
    end
    publisher.join(scaled(6))
    assert_equal 3, received.size
    assert_equal received.map(&:seq), received.map(&:seq).sort
  end

  def test_close_from_another_thread_ends_a_blocked_next
    sub = @client.subscribe(@topic)
    reader = Thread.new { sub.next }
    sleep 0.1
    sub.close
    assert reader.join(scaled(2)), "next did not return after close"
    assert_nil reader.value
  end
end
