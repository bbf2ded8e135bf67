# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# PushWindow alone: the bookkeeping of push_many, with times given by hand.
class PushWindowTest < Minitest::Test
  Wire = Zeromesh::Wire
  PushWindow = Zeromesh::PushWindow

  def window(count, window: 10, batch: 4, resend: 2.0)
    n = 0
    PushWindow.new(Array.new(count) { |i| "j#{i}" }, window: window, batch: batch, resend_s: resend,
                                                      new_id: -> { "m#{n += 1}" })
  end

  def indices(due)
    due.map(&:last)
  end

  def test_whole_batches_up_to_the_window
    w = window(25, window: 10, batch: 4)
    assert_equal [[0, 1, 2, 3], [4, 5, 6, 7]], indices(w.due(0.0)) # 8 out, room 2 < batch 4
    assert_equal [], w.due(0.1)
    4.times { |i| w.on_confirm("j#{i}") }
    assert_equal 4, w.confirmed
    assert w.wake?
    assert_equal [[8, 9, 10, 11]], indices(w.due(0.2))
    refute w.done?
  end

  def test_a_batch_larger_than_the_window_is_cut_to_it
    w = window(5, window: 3, batch: 100)
    assert_equal [[0, 1, 2]], indices(w.due(0.0))
    3.times { |i| w.on_confirm("j#{i}") }
    assert_equal [[3, 4]], indices(w.due(0.1))
  end

  def test_resends_only_the_unconfirmed_under_a_new_message_id
    w = window(3, batch: 10)
    (first, ix), = w.due(0.0)
    assert_equal [0, 1, 2], ix
    w.on_confirm("j1")
    assert_equal 2.0, w.next_resend
    assert_equal [], w.due(1.9)
    (again, ix), = w.due(2.0)
    assert_equal [0, 2], ix
    refute_equal first, again
    w.on_confirm("j0")
    w.on_confirm("j2")
    w.on_confirm("j2") # a confirm of the resend as well counts once
    assert w.done?
    assert_equal 3, w.confirmed
    assert_equal Float::INFINITY, w.next_resend
    assert_equal [first, again].sort, w.settled.sort, "both messages are settled: their keys may go"
  end

  def test_a_batch_confirm_settles_its_message
    w = window(4, batch: 2)
    (m1, _), (m2, _) = w.due(0.0)
    w.on_confirm_batch(m2)
    assert_equal [2, [m2]], [w.confirmed, w.settled]
    w.on_confirm_batch(m2) # again: nothing new
    w.on_confirm_batch("unknown")
    assert_equal 2, w.confirmed
    w.on_confirm_batch(m1)
    assert w.done?
    assert_equal %w[j0 j1 j2 j3], w.accepted
  end

  def test_unknown_command_steps_down_once_per_form
    w = window(6, batch: 2)
    sent = w.due(0.0)
    sent.each { |message_id, _| w.note_form(message_id, Wire::PUSH_PACKED) }
    sent.each { |message_id, _| w.on_error({ "re" => message_id, "code" => "unknown_command" }) }
    assert_equal Wire::PUSH_BATCH, w.command, "three refusals of PUSH_PACKED step down once"
    again = w.due(0.1)
    assert_equal [[0, 1], [2, 3], [4, 5]], indices(again), "the same jobs go again at once"
    again.each { |message_id, _| w.note_form(message_id, Wire::PUSH_BATCH) }
    w.on_error({ "re" => again[0][0], "code" => "unknown_command" })
    assert_equal Wire::PUSH, w.command
    assert_nil w.first_error
    assert_equal [[0, 1]], indices(w.due(0.2))
  end

  def test_a_refusal_stops_new_sends_and_is_kept_with_what_was_accepted
    w = window(10, window: 4, batch: 2)
    (m1, _), = w.due(0.0)
    w.on_confirm("j0")
    w.on_error({ "re" => "j1", "code" => "queue_full" })
    w.on_error({ "re" => "j2", "code" => "too_large" })
    assert_equal "queue_full", w.first_error["code"]
    assert_equal [], w.due(0.1), "nothing new after a refusal"
    refute w.done?, "j3 is still in flight"
    w.on_confirm("j3")
    assert w.done?
    assert_equal %w[j0 j3], w.accepted
    assert_includes w.settled, m1
  end

  def test_sizes_are_checked
    assert_raises(ArgumentError) { window(1, window: 0) }
    assert_raises(ArgumentError) { window(1, batch: 0) }
    assert_raises(ArgumentError) { window(1, batch: Wire::MAX_ITEMS_PER_MESSAGE + 1) }
    assert_raises(ArgumentError) { window(1, window: 2.5) }
  end
end
