# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  module CLI
    # push and request: one Client, each body from a FILE (or stdin when none is named).
    class ClientVerbs
      def initialize(options, stdin:, stdout:)
        @options = options
        @stdin = stdin
        @stdout = stdout
      end

      # push QUEUE [FILE...]: one job per body, its id on a line.
      def push
        queue, *files = @options.positional
        raise Usage, "push needs a QUEUE" unless queue

        timeout = @options.number("timeout", Zeromesh::Defaults::PUSH_TIMEOUT_S)
        with_client do |c|
          bodies(files).each { |_file, body| @stdout.puts c.push(queue, body, timeout: timeout) }
        end
      end

      # request SERVICE [FILE...]: each reply to FILE.reply, or to stdout for stdin's body.
      def request
        service, *files = @options.positional
        raise Usage, "request needs a SERVICE" unless service

        timeout = @options.number("timeout", Zeromesh::Defaults::REQUEST_TIMEOUT_S)
        with_client do |c|
          bodies(files).each do |file, body|
            reply = c.request(service, body, timeout: timeout)
            if file
              File.binwrite("#{file}.reply", reply)
            else
              @stdout.write(reply)
            end
          end
        end
      end

      private

      # Runs the block with a client, closed after; the exit status.
      def with_client
        c = Zeromesh::Client.new(endpoint: @options.endpoint, pub_endpoint: @options.pub_endpoint, **@options.curve)
        begin
          yield c
          0
        rescue Zeromesh::Error => e
          CLI.failure(e)
        ensure
          c.close
        end
      end

      # [file, bytes] for each FILE, or [nil, stdin's bytes] when there is none.
      def bodies(files)
        return [[nil, @stdin.binmode.read]] if files.empty?

        files.map { |f| [f, File.binread(f)] }
      end
    end
  end
end
