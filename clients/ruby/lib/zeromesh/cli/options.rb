# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "fileutils"

module Zeromesh
  module CLI
    # A usage error: zeromesh-rb prints it with the usage and exits 64.
    class Usage < StandardError; end

    # The parsed command line of one zeromesh-rb verb, and the checks of its values.
    class Options
      MODES = %w[echo sha256 fail sleep].freeze

      attr_reader :positional, :pairs

      # --name VALUE options (the last one wins), positional words, and [word, mode]
      # pairs for serve (each --mode applies to the word before it).
      def self.parse(argv, env: ENV)
        opts = {}
        positional = []
        pairs = []
        words = argv.dup
        until words.empty?
          word = words.shift
          unless word.start_with?("--")
            positional << word
            next
          end
          key = word.delete_prefix("--")
          raise Usage, "#{word} needs a value" if words.empty?

          value = words.shift
          if key == "mode"
            raise Usage, "--mode #{value} follows no service" if positional.empty?
            raise Usage, "unknown mode #{value.inspect} (#{MODES.join(", ")})" unless MODES.include?(value)

            pairs << [positional.pop, value]
          else
            opts[key] = value
          end
        end
        new(opts, positional, pairs, env)
      end

      def initialize(opts, positional, pairs, env)
        @opts = opts
        @positional = positional
        @pairs = pairs
        @env = env
      end

      def [](key)
        @opts[key]
      end

      def number(key, default)
        value = @opts.fetch(key, default)
        Float(value)
      rescue ArgumentError, TypeError
        raise Usage, "--#{key} wants a number, not #{value.inspect}"
      end

      def count
        raise Usage, "--count N is required" unless @opts["count"]

        n = Integer(@opts["count"], exception: false)
        raise Usage, "--count wants a positive integer" unless n&.positive?

        n
      end

      # --out DIR, created if need be.
      def out_dir
        dir = @opts["out"] or raise Usage, "--out DIR is required"
        FileUtils.mkdir_p(dir)
        dir
      end

      # --endpoint, else ZEROMESH_BROKER, else the default: a list of one or more.
      def endpoint
        endpoints(@opts["endpoint"] || @env["ZEROMESH_BROKER"] || Zeromesh::Defaults::BROKER_ENDPOINT, "endpoint")
      end

      # ZEROMESH_CURVE_SERVER and ZEROMESH_CURVE_SECRET, as Client and Worker take them.
      def curve
        { curve_server: @env["ZEROMESH_CURVE_SERVER"], curve_secret: @env["ZEROMESH_CURVE_SECRET"] }
      end

      # --pub-endpoint, else ZEROMESH_PUB, else the default: a list of one or more.
      def pub_endpoint
        endpoints(@opts["pub-endpoint"] || @env["ZEROMESH_PUB"] || Zeromesh::Defaults::PUB_ENDPOINT, "PUB endpoint")
      end

      private

      def endpoints(value, what)
        Zeromesh::Endpoints.parse(value, what)
      rescue ArgumentError => e
        raise Usage, e.message
      end
    end
  end
end
