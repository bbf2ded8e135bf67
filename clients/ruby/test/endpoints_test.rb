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

# The credit split rule: shares over the brokers registered, and caps that
# never let the total held pass the credit.
class CreditSplitTest < Minitest::Test
  Split = Zeromesh::CreditSplit

  def test_shares_follow_the_rule_rotated_by_the_offset
    assert_equal [4, 3, 3], Split.shares(10, [true, true, true], 0)
    assert_equal [3, 4, 3], Split.shares(10, [true, true, true], 1)
    assert_equal [5, 0, 5], Split.shares(10, [true, false, true], 0)
    assert_equal [1, 0, 1, 0], Split.shares(2, [true, false, true, true], 0), "C < n: n - C brokers get 0"
    assert_equal [0, 0], Split.shares(4, [false, false], 0)
  end

  def test_a_raise_waits_for_what_others_hold_over_their_new_share
    # Broker 0 held the whole credit alone; broker 1 registers.
    assert_equal [2, 0], Split.caps(4, [2, 2], [4, 0], [4, 0])
    assert_equal [2, 1], Split.caps(4, [2, 2], [2, 0], [3, 0])
    assert_equal [2, 2], Split.caps(4, [2, 2], [2, 1], [2, 1])
  end

  def test_the_total_a_worker_may_hold_never_passes_its_credit
    rng = Random.new(16)
    500.times do
      n = rng.rand(1..4)
      credit = rng.rand(0..9)
      caps = Array.new(n) { rng.rand(0..credit) }
      held = Array.new(n) { rng.rand(0..credit) }
      # A valid start: what may be held is within the credit.
      next if caps.each_index.sum { |i| [caps[i], held[i]].max } > credit

      shares = Split.shares(credit, Array.new(n) { rng.rand < 0.7 }, rng.rand(n))
      out = Split.caps(credit, shares, caps, held)
      assert_operator out.each_index.sum { |i| [out[i], held[i]].max }, :<=, credit
      out.each_index { |i| assert_operator out[i], :<=, shares[i] }
    end
  end
end
