# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "../zeromesh"
require_relative "cli/options"
require_relative "cli/client_verbs"
require_relative "cli/worker_verbs"
require_relative "cli/subscribe_verb"

module Zeromesh
  # The command line of bin/zeromesh-rb (its header has the manual): reads argv and the
  # environment, runs one verb, returns the exit status. Each verb group is a class in cli/:
  # ClientVerbs (push, request), WorkerVerbs (work, serve) and SubscribeVerb (subscribe).
  module CLI
    USAGE = <<~TEXT
      usage: zeromesh-rb push QUEUE [FILE...]
             zeromesh-rb work QUEUE --count N --out DIR [--hold S] [--label L] [--timeout S]
             zeromesh-rb serve SERVICE --mode echo|sha256|fail|sleep [SERVICE --mode M]... [--sleep S] [--label L]
             zeromesh-rb request SERVICE [--timeout S] [FILE...]
             zeromesh-rb subscribe PREFIX... --count N --out DIR [--warmup TOPIC] [--timeout S]
      common options: --endpoint TCP_URL --pub-endpoint TCP_URL
    TEXT

    module_function

    # argv without the program name; returns the exit status (64: a usage error).
    def main(argv, env: ENV, stdin: $stdin, stdout: $stdout)
      stdout.sync = true
      stdout.binmode
      verb = argv.first
      options = Options.parse(argv.drop(1), env: env)
      case verb
      when "push" then ClientVerbs.new(options, stdin: stdin, stdout: stdout).push
      when "request" then ClientVerbs.new(options, stdin: stdin, stdout: stdout).request
      when "work" then WorkerVerbs.new(options, stdout: stdout).work
      when "serve" then WorkerVerbs.new(options, stdout: stdout).serve
      when "subscribe" then SubscribeVerb.new(options, stdout: stdout).run
      else raise Usage, verb ? "unknown verb #{verb.inspect}" : "no verb"
      end
    rescue Usage => e
      warn "zeromesh-rb: #{e.message}"
      warn USAGE
      64
    rescue Zeromesh::Error => e # a client that cannot be made: a bad CURVE setting
      failure(e)
    end

    # Report a client error as the protocol code (stderr line 1) and the message; the exit status.
    def failure(error)
      warn error.code
      warn error.message
      case error
      when Zeromesh::TimeoutError then 2
      when Zeromesh::NoRespondersError then 3
      when Zeromesh::AuthenticationError, Zeromesh::ForbiddenError then 4
      else 1
      end
    end
  end
end
