# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "securerandom"

# A worker of several brokers never holds more than its credit while brokers
# come and go (SPEC 2.4): real brokers on loopback ports, saturated with slow
# jobs, a third started mid-stream. The worker runs more handler threads than
# its credit, so only the credit limits what runs at once.
class WorkerCreditTest < Minitest::Test
  include TestSupport

  CREDIT = 4
  JOB_S = 0.3
  # From the third broker's first job pushed to its first job handled, at most (scaled).
  JOIN_BOUND_S = 5.0

  # Samples the held figures of the brokers' status until stopped. Two brokers
  # are never read at the same instant, and a job may move from one read early
  # to one read late, so each round reads every broker twice and counts each
  # broker's lower figure: a job that finished between the two reads is not
  # counted twice, one held throughout is counted.
  class Sampler
    attr_reader :most, :rounds
    attr_accessor :brokers

    def initialize(label)
      @label = label
      @brokers = []
      @clients = {}
      @most = 0
      @rounds = 0
      @stop = Zeromesh::Latch.new
      @thread = Thread.new { run }
    end

    def stop
      @stop.set
      @thread.join(TestSupport.scaled(10))
      @clients.each_value(&:close)
    end

    private

    def run
      until @stop.wait(0.05)
        brokers = @brokers.dup
        first = brokers.map { |b| held_by(b) }
        second = brokers.map { |b| held_by(b) }
        @most = [@most, first.zip(second).sum(&:min)].max
        @rounds += 1
      end
    end

    def held_by(broker)
      client = @clients[broker.endpoint] ||= Zeromesh::Client.new(endpoint: broker.endpoint, pub_endpoint: broker.pub_endpoint)
      client.status["workers"].select { |w| w["label"] == @label }.sum { |w| w["held"] }
    end
  end

  def test_a_joining_broker_gets_only_what_is_free_and_the_total_never_exceeds_the_credit
    brokers = Array.new(3) { |i| Broker.new(name: "credit-b#{i}-#{SecureRandom.hex(2)}") }
    closers = []
    brokers[0, 2].map { |b| Thread.new { b.start } }.each(&:join)
    label = "credit-#{SecureRandom.hex(3)}"
    lock = Mutex.new
    running = 0
    most = 0
    handled = []
    first_b2 = nil
    worker = Zeromesh::Worker.new(endpoint: brokers.map(&:endpoint), concurrency: 2 * CREDIT, credit: CREDIT,
                                  label: label)
    worker.handle("slow") do |job|
      lock.synchronize do
        running += 1
        most = [most, running].max
      end
      sleep JOB_S
      lock.synchronize do
        running -= 1
        handled << job.text
        first_b2 ||= Zeromesh::Clock.now if job.text.start_with?("b2-")
      end
    end
    worker.start
    closers << -> { worker.stop(grace: scaled(2)) }
    sampler = Sampler.new(label)
    begin
      admin = brokers.to_h { |b| [b, Zeromesh::Client.new(endpoint: b.endpoint, pub_endpoint: b.pub_endpoint)] }
      closers << -> { admin.each_value(&:close) }
      credits = -> { brokers[0, 2].flat_map { |b| admin[b].status["workers"].select { |w| w["label"] == label }.map { |w| w["credit"] } }.sort }
      wait_until(10, "the credit split 2/2 over the first two brokers", interval: 0.1) { credits.call == [2, 2] }
      sampler.brokers = brokers[0, 2]
      brokers[0, 2].each_with_index do |b, i|
        admin[b].push_many("slow", Array.new(40) { |n| "b#{i}-#{n}" })
      end
      wait_until(10, "the first two brokers' jobs being handled") { lock.synchronize { handled.size } >= 2 * CREDIT }
      brokers[2].start
      closers << -> { brokers[2].stop }
      admin[brokers[2]] = Zeromesh::Client.new(endpoint: brokers[2].endpoint, pub_endpoint: brokers[2].pub_endpoint)
      joined = 10
      admin[brokers[2]].push_many("slow", Array.new(joined) { |n| "b2-#{n}" })
      pushed_at = Zeromesh::Clock.now
      sampler.brokers = brokers
      wait_until(JOIN_BOUND_S, "a job of the joining broker handled") { lock.synchronize { first_b2 } }
      served_after = first_b2 - pushed_at
      wait_until(30, "the joining broker's jobs") { lock.synchronize { handled.count { |t| t.start_with?("b2-") } } >= joined }
    ensure
      sampler.stop # first: it reads the brokers
      closers.reverse_each(&:call)
      brokers[0, 2].each(&:stop)
    end
    by_broker = handled.group_by { |t| t.split("-").first }.transform_values(&:size)
    puts format("\ncredit %d: handled %s; most running at once %d; most held by the brokers %d over %d samples; " \
                "the joining broker's first job done %.2fs after its push",
                CREDIT, by_broker, most, sampler.most, sampler.rounds, served_after)
    assert_operator sampler.rounds, :>=, 10
    assert_operator most, :<=, CREDIT, "#{most} handlers ran at once with credit #{CREDIT}"
    assert_operator sampler.most, :<=, CREDIT, "the brokers held #{sampler.most} jobs for a worker of credit #{CREDIT}"
  end
end
