# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# Endpoint lists (ZEROMESH_BROKER / ZEROMESH_PUB and the arguments), parsed in one place.
class EndpointsTest < Minitest::Test
  def test_one_endpoint_is_a_list_of_one
    assert_equal ["tcp://127.0.0.1:5555"], Zeromesh::Endpoints.parse("tcp://127.0.0.1:5555")
  end

  def test_commas_split_and_whitespace_around_them_is_ignored
    assert_equal %w[tcp://h1:1 tcp://h2:2 tcp://h3:3], Zeromesh::Endpoints.parse(" tcp://h1:1 ,tcp://h2:2,  tcp://h3:3")
    assert_equal %w[tcp://h1:1 tcp://h2:2], Zeromesh::Endpoints.parse(["tcp://h1:1", "tcp://h2:2"])
  end

  def test_an_empty_item_is_an_error_naming_the_list
    ["tcp://a:1,", ",tcp://a:1", "tcp://a:1,,tcp://b:2", "tcp://a:1, ,tcp://b:2", "", " "].each do |bad|
      error = assert_raises(ArgumentError, bad.inspect) { Zeromesh::Endpoints.parse(bad, "PUB endpoint") }
      assert_equal "empty PUB endpoint in #{bad.inspect}", error.message
    end
  end

  def test_clients_and_workers_refuse_a_bad_list_before_connecting
    assert_raises(ArgumentError) { Zeromesh::Client.new(endpoint: "tcp://127.0.0.1:1,", pub_endpoint: "tcp://127.0.0.1:2") }
    assert_raises(ArgumentError) { Zeromesh::Client.new(endpoint: "tcp://127.0.0.1:1", pub_endpoint: ",") }
    assert_raises(ArgumentError) { Zeromesh::Worker.new(endpoint: "tcp://127.0.0.1:1,,tcp://127.0.0.1:2") }
  end

  def test_failover_s_comes_from_the_environment_and_must_be_a_number
    ENV["ZEROMESH_FAILOVER_S"] = "soon"
    error = assert_raises(ArgumentError) { Zeromesh::Client.env_seconds("ZEROMESH_FAILOVER_S", 3.0) }
    assert_equal 'ZEROMESH_FAILOVER_S must be a number of seconds, not "soon"', error.message
    ENV["ZEROMESH_FAILOVER_S"] = "0.5"
    assert_in_delta 0.5, Zeromesh::Client.env_seconds("ZEROMESH_FAILOVER_S", 3.0)
  ensure
    ENV.delete("ZEROMESH_FAILOVER_S")
  end
end

# The credit split rule (SPEC 2.4): shares over the brokers registered, a
# lowered share by READY that counts at the old credit until answered, and
# raises only out of what is free.
class CreditSplitTest < Minitest::Test
  Split = Zeromesh::CreditSplit

  def test_shares_follow_the_rule_rotated_by_the_offset
    assert_equal [4, 3, 3], Split.shares(10, [true, true, true], 0)
    assert_equal [3, 4, 3], Split.shares(10, [true, true, true], 1)
    assert_equal [5, 0, 5], Split.shares(10, [true, false, true], 0)
    assert_equal [1, 0, 1, 0], Split.shares(2, [true, false, true, true], 0), "C < n: n - C brokers get 0"
    assert_equal [0, 0], Split.shares(4, [false, false], 0)
  end

  def changes(hash)
    hash.transform_values { |c| [c.credit, c.lower] }
  end

  def test_sessions_registering_and_lost_are_lowered_by_ready_and_raised_by_credit
    split = Split.new(4, 3, 1)
    # READYs before any registration: the first takes the whole credit, the others what is left.
    assert_equal [4, 0, 0], (0..2).map { |i| split.ready_credit(i) }
    assert_equal({}, split.registered(0))
    assert_equal({ 0 => [2, true] }, changes(split.registered(1)))
    # Rotated by offset 1: order 1, 2, 0 -> shares 1, 2, 1 (index order). Session 0 is lowered
    # by READY; until its broker answers, it may still be sent 4, so the others wait.
    assert_equal({ 0 => [1, true] }, changes(split.registered(2)))
    assert_equal 4, split.counted
    assert_equal({ 1 => [2, false], 2 => [1, false] }, changes(split.confirmed(0, 1, 0)))
    assert_equal({ 0 => [2, false], 2 => [2, false] }, changes(split.lost(1)))
    assert_equal 0, split.ready_credit(1), "back again: its READY gets what is free"
    assert_equal({ 0 => [1, true], 2 => [1, true] }, changes(split.registered(1)))
    assert_equal({ 1 => [1, false] }, changes(split.confirmed(0, 1, 0)), "what session 0 freed")
    assert_equal({ 1 => [2, false] }, changes(split.confirmed(2, 1, 0)))
    assert_equal({ 0 => 1, 1 => 2, 2 => 1 }, split.sent)
  end

  def test_a_joining_session_gets_only_what_is_free_and_the_rest_as_jobs_finish
    split = Split.new(4, 3, 0) # shares over 0, 1, 2: 2, 1, 1
    assert_equal [4, 0], [0, 1].map { |i| split.ready_credit(i) }
    split.registered(0)
    assert_equal({ 0 => [2, true] }, changes(split.registered(1)))
    assert_equal({ 1 => [2, false] }, changes(split.confirmed(0, 2, 0)))
    assert_equal({}, split.report(0, 2))
    assert_equal({}, split.report(1, 2))
    assert_equal 0, split.ready_credit(2)
    # Session 1 holds 2, above its share 1: not lowered below what it holds, so nothing is free.
    assert_equal({}, split.registered(2))
    assert_equal({}, split.report(0, 1), "session 0 is at its share: its broker refills it")
    # One of session 1's finishes: lowered to 1 now (READY, sent before its ACK), the slot still counted.
    assert_equal({ 1 => [1, true] }, changes(split.report(1, 1)))
    assert_equal 4, split.counted
    assert_equal({ 2 => [1, false] }, changes(split.confirmed(1, 1, 1)))
    assert_equal 4, split.counted
  end

  # Brokers that apply what they were told (a lowering READY only when the
  # test lets it arrive) and send jobs up to it: whatever happens, the jobs a
  # worker holds over all brokers never pass its credit.
  def test_what_the_brokers_may_send_never_passes_the_credit
    rng = Random.new(17)
    200.times do
      n = rng.rand(2..4)
      credit = rng.rand(0..8)
      split = Split.new(credit, n, rng.rand(n))
      applied = Array.new(n, 0) # the credit each broker applies
      held = Array.new(n, 0)
      live = Array.new(n, false)
      pending = Array.new(n) # a lowering READY not yet processed by its broker
      tell = lambda do |result|
        result.each do |i, change|
          if change.lower
            pending[i] = change.credit
          else
            applied[i] = change.credit
          end
        end
      end
      300.times do
        i = rng.rand(n)
        case rng.rand(6)
        when 0
          next if live[i]

          applied[i] = split.ready_credit(i)
          live[i] = true
          tell.call(split.registered(i))
        when 1
          next unless live[i] && held[i] < applied[i]

          held[i] += 1
          tell.call(split.report(i, held[i]))
        when 2
          next unless held[i].positive?

          held[i] -= 1
          tell.call(split.report(i, held[i]))
        when 3
          next unless pending[i]

          applied[i] = pending[i]
          pending[i] = nil
          tell.call(split.confirmed(i, applied[i], held[i]))
        when 4
          next unless live[i] && rng.rand < 0.3

          live[i] = false
          held[i] = 0
          applied[i] = 0
          pending[i] = nil
          tell.call(split.lost(i))
        end
        may = (0...n).sum { |k| [held[k], applied[k]].max }
        assert_operator may, :<=, credit, "held #{held} applied #{applied} of credit #{credit}"
      end
    end
  end
end
