# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# The demo ecard site's `send` queue, worked in Ruby: what the Python handler in
# nodes/demo/workers.py does, message for message, so the site cannot tell them apart.
#
#   ruby -I clients/ruby/lib clients/ruby/examples/send_worker.rb [--sent-log QUEUE] [--concurrency N]
#
# For each job (a form post or JSON {card_id, to, from, message}, from POST /send on the edge):
#   1. asks the `cards` service {"op": "sent", "id": ...} to count one more send (the counts
#      live with the catalog, in the Python demo workers); no such card -> dead letter
#   2. RPUSHes the event (JSON) to the Redis list zeromesh:demo:sent, keeping the last 1000
#   3. publishes it on `cards.sent` (the /live page shows it), then invalidates the tag
#      card:<id> and the path "/" (zeromesh.invalidate.tag / zeromesh.invalidate.path)
#   4. with --sent-log QUEUE, pushes a one-line summary to that raw queue (the bash consumer
#      clients/bash/examples/sent_log.sh appends it to var/sent.log)
#
# Start the Python workers with --skip send so this worker gets every job (`make run` does).
# Environment: ZEROMESH_BROKER, ZEROMESH_PUB, ZEROMESH_REDIS_URL (unset: the embedded
# server's socket var/redis/redis.sock; "none": no Redis list, the rest goes on).

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "json"
require "logger"
require "optparse"
require "redis"
require "zeromesh"

module SendWorker
  SENT_KEY = "zeromesh:demo:sent" # newest last, capped at SENT_KEEP
  SENT_KEEP = 1000
  SENT_TOPIC = "cards.sent"
  INVALIDATE_TAG = "zeromesh.invalidate.tag"
  INVALIDATE_PATH = "zeromesh.invalidate.path"
  H_HEADERS = "http.headers" # the HTTP request's headers, lower-cased, as the edge forwards them
  MAX_FIELD = 200            # longest name kept (nodes/demo/catalog.py)
  MAX_MESSAGE = 1000

  class BadSend < StandardError; end

  module_function

  # Python's str.strip(): Unicode whitespace too.
  def strip(text)
    text.gsub(/\A[[:space:]]+|[[:space:]]+\z/, "")
  end

  # Python's str(value) for what JSON decodes to, so {"card_id": 3} means "3" here too.
  def pystr(value)
    case value
    when nil then "None"
    when true then "True"
    when false then "False"
    when String then value
    else value.to_s
    end
  end

  # urllib.parse.unquote_plus: a bad %-escape stays as it is, bad UTF-8 becomes U+FFFD.
  def unquote_plus(text)
    text.tr("+", " ").b.gsub(/%[0-9A-Fa-f]{2}/) { |m| m[1, 2].hex.chr }.force_encoding(Encoding::UTF_8).scrub("\uFFFD")
  end

  # urllib.parse.parse_qs(text, keep_blank_values=True), keeping each field's first value.
  def parse_form(text)
    fields = {}
    text.split("&").each do |pair|
      next if pair.empty?

      name, value = pair.split("=", 2)
      fields[unquote_plus(name)] ||= unquote_plus(value || "")
    end
    fields
  end

  # nodes/demo/catalog.py parse_send: {"card_id", "to", "from", "message"}, or BadSend.
  def parse_send(body, content_type)
    text = strip(body.dup.force_encoding(Encoding::UTF_8).scrub("\uFFFD"))
    if content_type.include?("json") || text.start_with?("{")
      begin
        data = JSON.parse(text)
      rescue JSON::ParserError
        raise BadSend, "the body is not valid JSON"
      end
      raise BadSend, "the body must be a JSON object" unless data.is_a?(Hash)

      fields = data.transform_values { |v| pystr(v) }
    else
      fields = parse_form(text)
    end
    card_id = strip(fields.fetch("card_id", ""))
    raise BadSend, "card_id is missing" if card_id.empty?

    to = strip(fields.fetch("to", ""))[0, MAX_FIELD]
    from = strip(fields.fetch("from", ""))[0, MAX_FIELD]
    { "card_id" => card_id,
      "to" => to.empty? ? "a friend" : to,
      "from" => from.empty? ? "someone" : from,
      "message" => strip(fields.fetch("message", ""))[0, MAX_MESSAGE] }
  end

  # nodes/demo/catalog.py sent_event: what cards.sent carries, keys in the same order.
  def sent_event(sent, card, job_id)
    { "job" => job_id, "card_id" => sent["card_id"], "title" => card["title"], "symbol" => card["symbol"],
      "to" => sent["to"], "from" => sent["from"], "message" => sent["message"], "sent" => card["sent"],
      "at" => Time.now.to_f.round(3) }
  end

  # nodes/demo/catalog.py sent_summary: one line for the raw queue.
  def sent_summary(event)
    at = event["at"]
    line = "#{Time.at(at.floor).utc.strftime("%Y-%m-%dT%H:%M:%SZ")} card #{event["card_id"]} " \
           "(#{event["title"]}) from #{event["from"]} to #{event["to"]}, " \
           "sent #{event["sent"]} time#{event["sent"] == 1 ? "" : "s"}, job #{event["job"]}"
    line.split(/[[:space:]]+/).reject(&:empty?).join(" ")
  end

  # Compact JSON, non-ASCII as is: what Python's json.dumps(separators=(",", ":"), ensure_ascii=False) writes.
  def dumps(value)
    JSON.generate(value)
  end

  # ZEROMESH_REDIS_URL as every zeromesh process reads it (zeromesh.cli_nodes.redis_url); nil: none.
  def redis_url
    url = ENV.fetch("ZEROMESH_REDIS_URL", "")
    return nil if url.casecmp?("none")
    return url unless url.empty?

    data_dir = ENV["ZEROMESH_DATA_DIR"].to_s.empty? ? File.join("var", "redis") : ENV["ZEROMESH_DATA_DIR"]
    "unix://#{File.expand_path(File.join(data_dir, "redis.sock"))}"
  end

  class Handler
    def initialize(client:, redis:, sent_log:, logger:)
      @client = client
      @redis = redis
      @sent_log = sent_log
      @log = logger
    end

    def call(job)
      http_headers = job.headers[H_HEADERS] || {}
      begin
        sent = SendWorker.parse_send(job.body, http_headers.fetch("content-type", "").to_s)
      rescue BadSend => e
        raise Zeromesh::DeadLetter, e.message
      end
      # At-least-once: a redelivered job (attempt > 1) may have been counted already.
      # The demo accepts the double count rather than keeping a table of job ids.
      reply = @client.request("cards", SendWorker.dumps({ "op" => "sent", "id" => sent["card_id"] }), timeout: 2)
      card = JSON.parse(reply)
      raise Zeromesh::DeadLetter, "no card #{sent["card_id"].inspect}" if card.nil?

      event = SendWorker.sent_event(sent, card, job.id)
      record(event)
      @client.publish(SENT_TOPIC, SendWorker.dumps(event))
      @client.publish(INVALIDATE_TAG, "card:#{sent["card_id"]}")
      @client.publish(INVALIDATE_PATH, "/")
      log_line(event)
      @log.info("card #{sent["card_id"]} sent from #{sent["from"]} to #{sent["to"]} (job #{job.id})")
      nil
    end

    private

    def record(event)
      return unless @redis

      json = SendWorker.dumps(event)
      @redis.pipelined do |pipe|
        pipe.rpush(SENT_KEY, json)
        pipe.ltrim(SENT_KEY, -SENT_KEEP, -1)
      end
    rescue StandardError => e # Redis is optional for the demo
      @log.warn("could not record the sent card in Redis: #{e.class}: #{e.message}")
    end

    def log_line(event)
      return if @sent_log.nil? || @sent_log.empty?

      @client.push(@sent_log, SendWorker.sent_summary(event), timeout: 2)
    rescue Zeromesh::Error => e # the card is sent; only its log line is lost
      @log.warn("could not push to the queue #{@sent_log}: #{e.message}")
    end
  end

  def main(argv)
    options = { sent_log: "", concurrency: 8, label: "ruby-send-#{Process.pid}", log_level: ENV["ZEROMESH_LOG_LEVEL"] }
    OptionParser.new do |o|
      o.banner = "usage: ruby clients/ruby/examples/send_worker.rb [options]"
      o.on("--sent-log QUEUE", "push a one-line summary of each sent card to this raw queue") { |v| options[:sent_log] = v }
      o.on("--concurrency N", Integer, "handler threads (default 8)") { |v| options[:concurrency] = v }
      o.on("--label LABEL", "the worker's name in zeromesh status") { |v| options[:label] = v }
      o.on("--log-level LEVEL", "DEBUG, INFO, WARN or ERROR (default: ZEROMESH_LOG_LEVEL, else INFO)") do |v|
        options[:log_level] = v
      end
    end.parse!(argv)

    $stdout.sync = true
    logger = Zeromesh.logger($stderr, progname: "send_worker.rb", level: options[:log_level])
    url = redis_url
    # Plain or redis+sentinel:// (then each reconnection asks the sentinels for the primary).
    redis = url && Redis.new(**Zeromesh::RedisURL.options(url, connect_timeout: 1.0, timeout: 2.0))
    client = Zeromesh::Client.new
    worker = Zeromesh::Worker.new(concurrency: options[:concurrency], label: options[:label], logger: logger)
    worker.handle("send", Handler.new(client: client, redis: redis, sent_log: options[:sent_log], logger: logger))
    # Until SIGTERM or SIGINT: finishes the jobs it holds, leaves, and logs that it stopped.
    # The line is logged from the block, once SIGTERM already means a graceful stop.
    worker.run do
      logger.info("Ruby send worker: queue send on #{worker.endpoint}" \
                  "#{options[:sent_log].empty? ? "" : ", summaries to the raw queue #{options[:sent_log]}"}" \
                  "#{url ? "" : " (no Redis: ZEROMESH_REDIS_URL=none)"}")
    end
  ensure
    client&.close
    redis&.close
  end
end

SendWorker.main(ARGV) if $PROGRAM_NAME == __FILE__
