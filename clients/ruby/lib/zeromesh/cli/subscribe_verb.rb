# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  module CLI
    # subscribe PREFIX... --count N --out DIR [--warmup TOPIC] [--timeout S]: the n-th event's
    # body to DIR/<n>.bin and a line to DIR/events.log; 0 after N events, 2 on --timeout.
    class SubscribeVerb
      def initialize(options, stdout:)
        @options = options
        @stdout = stdout
      end

      def run
        prefixes = @options.positional
        raise Usage, "subscribe needs a PREFIX" if prefixes.empty?

        n_wanted = @options.count
        dir = @options.out_dir
        timeout = @options.number("timeout", 60)
        warmup = @options["warmup"]
        c = Zeromesh::Client.new(endpoint: @options.endpoint, pub_endpoint: @options.pub_endpoint, **@options.curve)
        sub = c.subscribe(*prefixes, *[warmup].compact)
        @stdout.puts "ready"
        warm = false
        got = 0
        deadline = Zeromesh::Clock.now + timeout
        while got < n_wanted
          left = deadline - Zeromesh::Clock.now
          event = left.positive? ? sub.next(timeout: left) : nil
          unless event
            warn "timeout"
            warn "#{got} of #{n_wanted} events within #{timeout} s"
            return 2
          end
          # The warm-up topic beats the slow joiner: "warm" on its first event, then ignored.
          if warmup && event.topic == warmup
            @stdout.puts "warm" unless warm
            warm = true
            next
          end
          got += 1
          write(dir, got, event)
        end
        0
      rescue Zeromesh::Error => e
        CLI.failure(e)
      ensure
        c&.close
      end

      private

      def write(dir, n, event)
        File.binwrite(File.join(dir, "#{n}.bin"), event.body)
        File.open(File.join(dir, "events.log"), "a") do |f|
          f.puts [n, event.topic, event.seq, event.gap?, event.body.bytesize].join("\t")
        end
        @stdout.puts "event #{n} #{event.topic} #{event.seq}"
      end
    end
  end
end
