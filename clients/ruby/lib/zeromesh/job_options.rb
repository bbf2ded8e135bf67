# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "messages"

module Zeromesh
  # A push's options for later and for once, checked and turned into the PUSH
  # header fields they become (SPEC.md 16.5, 16.6): at_ms, unique_key,
  # unique_ttl_ms. Everything is checked here, before anything is sent.
  module JobOptions
    module_function

    # {"at_ms" => ...} for a job due delay seconds from now or at the Time at;
    # {} for a job to run now.
    def later(delay, at)
      raise ArgumentError, "give delay: or at:, not both" if !delay.nil? && !at.nil?

      if !delay.nil?
        unless seconds?(delay) && delay >= 0
          raise ArgumentError, "delay: must be a number of seconds, 0 or more, not #{delay.inspect}"
        end

        # Wall-clock time: the broker keeps due times as instants (ms since the epoch, UTC).
        { "at_ms" => epoch_ms(Time.now.to_r + delay.to_r) }
      elsif !at.nil?
        # A Time is an instant whatever its offset; a String or a Date would need a zone
        # guessed, which differs from machine to machine.
        unless at.is_a?(Time)
          raise TypeError, "at: must be a Time (an instant, e.g. Time.new(2026, 12, 25, 8, 0, 0, \"+01:00\")), " \
                           "not #{at.class}: #{at.inspect}"
        end

        { "at_ms" => epoch_ms(at.to_r) }
      else
        {}
      end
    end

    # {"unique_key" => key, "unique_ttl_ms" => ...}: the key is held until the
    # job is done, or for ttl seconds from the push when given. {} without a key.
    def unique(key, ttl)
      if key.nil?
        raise ArgumentError, "unique_ttl: needs a unique_key:" unless ttl.nil?

        return {}
      end

      fields = { "unique_key" => Messages.name(key, "unique_key") }
      unless ttl.nil?
        raise ArgumentError, "unique_ttl: must be a number of seconds above 0, not #{ttl.inspect}" unless seconds?(ttl) && ttl.positive?

        fields["unique_ttl_ms"] = [1, (ttl.to_r * 1000).to_i].max
      end
      fields
    end

    def seconds?(value)
      value.is_a?(Numeric) && value.real? && (value.is_a?(Integer) || value.finite?)
    end

    # A time before 1970 is in the past, which means now; the wire's ints are unsigned.
    def epoch_ms(seconds)
      [(seconds * 1000).to_i, 0].max
    end
  end
end
