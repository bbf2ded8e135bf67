# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "logger"

module Zeromesh
  # Log levels by name, as ZEROMESH_LOG_LEVEL and --log-level spell them.
  LOG_LEVELS = { "DEBUG" => Logger::DEBUG, "INFO" => Logger::INFO, "WARN" => Logger::WARN,
                 "WARNING" => Logger::WARN, "ERROR" => Logger::ERROR }.freeze

  # A Logger for a zeromesh program: "LEVEL progname message" lines (a process
  # manager such as honcho adds the time), at level, which defaults to
  # ZEROMESH_LOG_LEVEL and then INFO, so the library's DEBUG lines (one per
  # batch of jobs, say) appear only when asked for. ArgumentError for a level
  # that is not one of LOG_LEVELS.
  def self.logger(io = $stderr, progname: nil, level: ENV["ZEROMESH_LOG_LEVEL"])
    name = (level.nil? || level.to_s.empty? ? "INFO" : level.to_s).upcase
    severity = LOG_LEVELS.fetch(name) do
      raise ArgumentError, "unknown log level #{level.inspect} (one of #{LOG_LEVELS.keys.join(", ")})"
    end
    Logger.new(io, progname: progname, level: severity).tap do |log|
      log.formatter = proc { |sev, _time, prog, msg| "#{sev} #{prog ? "#{prog} " : ""}#{msg}\n" }
    end
  end
end
