# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # How a worker of several brokers splits its credit C (the most jobs and
  # requests it may hold in all) between them (SPEC 2.4). Pure bookkeeping,
  # no sockets: WorkerIO feeds it what its sessions see and sends what it
  # returns.
  #
  # Over the brokers it is registered with now (READY answered, connection
  # not lost), in list order rotated by a per-worker offset (so a fleet of
  # workers with C < n does not all favour the first broker), broker i of n
  # has the target share C / n, plus 1 while i < C % n.
  #
  # A broker may send up to the credit it was last told, and a lowered credit
  # takes nothing back, so each session counts as max(bound, held): held,
  # what it holds now (reported after each flush), bound, the highest credit
  # its broker may still be applying. Only what is free (C minus the sum of
  # those counts) is ever given:
  #
  # * a session above its target is lowered at once to max(target, held),
  #   with READY (the broker answers a READY, not a CREDIT, so the session
  #   learns when the broker has taken the lower figure); until that answer
  #   (#confirmed) its bound stays the old credit;
  # * a session below its target (a joining broker, a share that grew) gets
  #   min(target, its count + what is free), with CREDIT, and the rest later
  #   as jobs finish elsewhere and lowered sessions are answered.
  #
  # Every call that changes something returns the changes: { session index
  # => Change }, each to be told to that session's broker. WorkerIO sends
  # them before the ACKs of the same flush, so a broker cannot refill a freed
  # slot under the old credit.
  class CreditSplit
    # Tell the broker credit: with READY when lower (its answer confirms it), else with CREDIT.
    Change = Struct.new(:credit, :lower)

    # Shares, index by index of live (an Array of booleans in list order).
    # A broker not live gets 0.
    def self.shares(credit, live, offset)
      n = live.size
      order = (0...n).map { |k| (k + offset) % n }.select { |i| live[i] }
      out = Array.new(n, 0)
      order.each_with_index { |i, rank| out[i] = credit / order.size + (rank < credit % order.size ? 1 : 0) }
      out
    end

    attr_reader :credit, :sent

    # count: how many brokers (sessions); offset: this worker's rotation.
    def initialize(credit, count, offset)
      raise ArgumentError, "a worker has at least one broker" if count < 1

      @credit = credit
      @count = count
      @offset = offset % count
      @live = {} # session index -> true while registered
      @sent = {} # the credit each session last told its broker (READY or CREDIT)
      @bound = {} # the most each broker may still apply (>= sent)
      @held = {} # what each session holds, as it last reported
    end

    # What the sessions hold or may be sent: never more than the credit.
    def counted
      (@bound.keys | @held.keys).sum { |i| [@bound.fetch(i, 0), @held.fetch(i, 0)].max }
    end

    # The credit session index puts in a READY. Unregistered: its share once
    # registered, but only out of what is free (never less than an earlier
    # READY of this connection offered). Registered (a READY that lowers, or
    # that changes the names): what it was last told.
    def ready_credit(index)
      return @sent.fetch(index, 0) if @live.key?(index)

      raise_toward(index, targets(@live.merge(index => true))[index], @credit - counted)
      @sent[index]
    end

    def registered(index)
      return {} if @live.key?(index)

      @live[index] = true
      rebalance
    end

    # Its connection was left: what it held is abandoned, and its broker sends nothing more on it.
    def lost(index)
      @live.delete(index)
      [@sent, @bound, @held].each { |table| table.delete(index) }
      rebalance
    end

    # Session index holds held now.
    def report(index, held)
      return {} if @held[index] == held

      @held[index] = held
      rebalance
    end

    # The broker answered the READY that lowered session index to credit; the
    # session holds held (every job sent before that answer has arrived, and
    # none since can pass credit). A later READY or CREDIT counts instead.
    def confirmed(index, credit, held)
      return {} unless @live.key?(index) && @sent[index] == credit

      @bound[index] = credit
      @held[index] = held
      rebalance
    end

    private

    def targets(live)
      self.class.shares(@credit, Array.new(@count) { |i| live.key?(i) }, @offset)
    end

    # The live sessions in rotated order: who is raised first when little is free.
    def order
      (0...@count).map { |k| (k + @offset) % @count }.select { |i| @live.key?(i) }
    end

    # Raise session index toward target out of free; returns what is left free.
    def raise_toward(index, target, free)
      sent = @sent.fetch(index, 0)
      bound = @bound.fetch(index, 0)
      counts = [bound, @held.fetch(index, 0)].max
      credit = [sent, [target, counts + [free, 0].max].min].max
      @sent[index] = credit
      @bound[index] = [bound, credit].max
      free - ([counts, credit].max - counts)
    end

    def rebalance
      shares = targets(@live)
      changes = {}
      order.each do |i|
        lower = [shares[i], @held.fetch(i, 0)].max
        next unless @sent.fetch(i, 0) > lower

        @sent[i] = lower # the bound stays until the broker answers the READY
        changes[i] = Change.new(lower, true)
      end
      free = @credit - counted
      order.each do |i|
        before = @sent.fetch(i, 0)
        next unless before < shares[i] # a raise up to its bound is free: the broker may apply that already

        free = raise_toward(i, shares[i], free)
        changes[i] = Change.new(@sent[i], false) if @sent[i] > before
      end
      changes
    end
  end
end
