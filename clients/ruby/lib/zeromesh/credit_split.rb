# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # How a worker of several brokers splits its credit C (the most jobs and
  # requests it may hold in all), as SPEC says: over the brokers it is
  # registered with, in list order rotated by a per-worker offset (so a fleet
  # of workers with C < n does not all favour the first broker), broker i of
  # n gets C / n, plus 1 while i < C % n. Pure arithmetic, no sockets.
  module CreditSplit
    module_function

    # Shares, index by index of live (an Array of booleans in list order).
    # A broker not live gets 0.
    def shares(credit, live, offset)
      n = live.size
      order = (0...n).map { |k| (k + offset) % n }.select { |i| live[i] }
      out = Array.new(n, 0)
      order.each_with_index { |i, rank| out[i] = credit / order.size + (rank < credit % order.size ? 1 : 0) }
      out
    end

    # The credit each broker may be told now (caps), moving from caps toward
    # shares without the total a worker may hold ever passing credit: a
    # broker may still send up to max(held, cap), so lowered caps take effect
    # first and a raise gets only what the others leave free (the rest comes
    # on a later call, as their jobs finish).
    def caps(credit, shares, caps, held)
      out = caps.each_index.map { |i| [caps[i], shares[i]].min }
      free = credit - out.each_index.sum { |i| [out[i], held[i]].max }
      out.each_index do |i|
        next unless shares[i] > out[i] && free.positive?

        before = [out[i], held[i]].max
        out[i] = [shares[i], before + free].min
        free -= [out[i], held[i]].max - before
      end
      out
    end
  end
end
