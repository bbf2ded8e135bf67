# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "uri"

module Zeromesh
  # ZEROMESH_REDIS_URL -> options for Redis.new, the one place Ruby reads a Redis URL.
  #
  # Plain forms go to the redis gem as they are: redis://, rediss:// and unix://. The
  # Sentinel form is zeromesh's (SPEC 16, the same grammar as the Python and Java clients):
  #
  #   redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?OPTIONS]
  #
  # OPTIONS: sentinel_password (the sentinels' own AUTH), ssl=true (TLS to the sentinels and
  # to the primary), ssl_ca_certs=PATH, socket_timeout=SECONDS, min_replicas=N (how many
  # replicas a durable push must reach; read with RedisURL.min_replicas, not a connection
  # setting). The options make a Redis whose every (re)connection asks the sentinels which
  # server is the primary now and checks its ROLE, so it follows a failover without a restart.
  module RedisURL
    SENTINEL_SCHEME = "redis+sentinel"
    PLAIN_SCHEMES = %w[redis rediss unix].freeze
    OPTIONS = %w[sentinel_password ssl ssl_ca_certs socket_timeout min_replicas].freeze
    TRUE_WORDS = %w[1 true yes on].freeze
    FALSE_WORDS = %w[0 false no off].freeze
    SECRET_QUERY = %w[password pass sentinel_password].freeze

    # A parsed redis+sentinel:// URL. sentinels: [[host, port], ...] in the URL's order.
    Sentinel = Struct.new(:sentinels, :service, :db, :username, :password, :sentinel_password, :ssl,
                          :ssl_ca_certs, :socket_timeout, :min_replicas, keyword_init: true)

    module_function

    # Keyword arguments for Redis.new (no connection is made). defaults (timeout:,
    # connect_timeout:...) are the caller's; the URL's socket_timeout wins over them.
    # ArgumentError, naming the URL with its passwords starred out, when it is malformed.
    def options(url, **defaults)
      return defaults.merge(url: url) unless scheme(url) == SENTINEL_SCHEME

      sentinel_options(parse_sentinel(url), defaults)
    end

    def sentinel?(url)
      scheme(url) == SENTINEL_SCHEME
    end

    # The URL's min_replicas option (Sentinel form only); nil when it does not say.
    def min_replicas(url)
      sentinel?(url) ? parse_sentinel(url).min_replicas : nil
    end

    # Split a redis+sentinel:// URL into its parts; ArgumentError saying what is wrong.
    def parse_sentinel(url)
      shown = redact(url)
      raise ArgumentError, "not a #{SENTINEL_SCHEME}:// URL: #{shown}" unless sentinel?(url)

      rest, _, query = url[(SENTINEL_SCHEME.size + 3)..].partition("?")
      query = query.split("#", 2).first.to_s
      netloc, slash, path = rest.partition("/")
      username = password = nil
      if netloc.include?("@")
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unescape(user) unless user.empty?
        password = unescape(secret) unless colon.empty?
      end
      sentinels = (netloc.empty? ? [""] : netloc.split(",", -1)).map { |item| host_port(item, shown) }
      parts = slash.empty? ? [] : path.split("/", -1)
      if parts.empty? || parts[0].empty?
        raise ArgumentError, "no Sentinel service name in #{shown} " \
                             "(expected #{SENTINEL_SCHEME}://HOST:PORT[,HOST:PORT...]/SERVICE[/DB])"
      end
      if parts.size > 2 || (parts.size == 2 && parts[1].empty?)
        raise ArgumentError, "after the service name only a database number may follow, in #{shown}"
      end

      db = parts.size == 2 ? database(parts[1], shown) : 0
      Sentinel.new(sentinels: sentinels, service: unescape(parts[0]), db: db, username: username,
                   password: password, **query_options(query, shown))
    end

    # The URL with every password (user part, or a password option in the query) starred out.
    def redact(url)
      return url.inspect unless url.is_a?(String)

      text, q, query = url.partition("?")
      text = text.sub(%r{\A([^:/]+://[^/@]*?):[^/@]*@}, '\1:***@')
      return text if q.empty?

      pairs = query.split("&").map do |pair|
        key, eq, = pair.partition("=")
        SECRET_QUERY.include?(key.downcase) && !eq.empty? ? "#{key}=***" : pair
      end
      "#{text}?#{pairs.join("&")}"
    end

    # -- helpers -------------------------------------------------------------

    def scheme(url)
      unless url.is_a?(String) && url.include?("://")
        raise ArgumentError, "a Redis URL looks like redis://HOST:PORT, rediss://..., unix:///PATH or " \
                             "#{SENTINEL_SCHEME}://HOST:PORT/SERVICE; got #{url.inspect}"
      end

      name = url.split("://", 2).first.downcase
      return name if name == SENTINEL_SCHEME || PLAIN_SCHEMES.include?(name)

      raise ArgumentError, "unknown Redis URL scheme #{name.inspect} in #{redact(url)} " \
                           "(known: #{PLAIN_SCHEMES.join(", ")}, #{SENTINEL_SCHEME})"
    end

    # redis 4.x names the primary's service by :host next to :sentinels, redis 5.x by :name.
    def sentinel_options(parsed, defaults)
      require "redis"
      opts = defaults.dup
      opts[Redis::VERSION.to_i >= 5 ? :name : :host] = parsed.service
      opts[:role] = :master
      opts[:db] = parsed.db
      opts[:sentinels] = parsed.sentinels.map do |host, port|
        { host: host, port: port }.tap { |s| s[:password] = parsed.sentinel_password if parsed.sentinel_password }
      end
      opts[:username] = parsed.username if parsed.username
      opts[:password] = parsed.password if parsed.password
      opts[:timeout] = parsed.socket_timeout if parsed.socket_timeout
      if parsed.socket_timeout
        %i[connect_timeout read_timeout write_timeout].each { |key| opts.delete(key) }
      end
      if parsed.ssl
        opts[:ssl] = true
        opts[:ssl_params] = { ca_file: parsed.ssl_ca_certs } if parsed.ssl_ca_certs
      end
      opts
    end

    def query_options(query, shown)
      found = {}
      pairs = begin
        URI.decode_www_form(query)
      rescue ArgumentError # its message quotes the query, passwords and all
        raise ArgumentError, "malformed options (expected NAME=VALUE&...) in #{shown}"
      end
      pairs.each do |key, value|
        unless OPTIONS.include?(key)
          raise ArgumentError, "unknown option #{key.inspect} in #{shown} (known: #{OPTIONS.join(", ")})"
        end

        found[key.to_sym] = option(key, value, shown)
      end
      { ssl: false }.merge(found)
    end

    def option(key, value, shown)
      case key
      when "ssl"
        return true if TRUE_WORDS.include?(value.downcase)
        return false if FALSE_WORDS.include?(value.downcase)

        raise ArgumentError, "ssl must be true or false, got #{value.inspect} in #{shown}"
      when "socket_timeout"
        seconds = Float(value, exception: false)
        unless seconds&.positive? && seconds.finite?
          raise ArgumentError, "socket_timeout must be a positive number of seconds, got #{value.inspect} in #{shown}"
        end

        seconds
      when "min_replicas"
        raise ArgumentError, "min_replicas must be a whole number >= 0, got #{value.inspect} in #{shown}" \
          unless value.match?(/\A\d+\z/)

        Integer(value, 10)
      else
        raise ArgumentError, "option #{key} is empty in #{shown}" if value.empty?

        value
      end
    end

    def host_port(item, shown)
      item = item.strip
      raise ArgumentError, "empty sentinel address in #{shown}" if item.empty?

      if item.start_with?("[") # [IPv6]:PORT
        host, _, port = item[1..].partition("]")
        port = port.start_with?(":") ? port[1..] : ""
      else
        host, _, port = item.rpartition(":")
      end
      raise ArgumentError, "sentinel address #{item.inspect} is not HOST:PORT, in #{shown}" if host.empty? || port.empty?
      unless port.match?(/\A\d+\z/) && (1..65_535).cover?(port.to_i)
        raise ArgumentError, "sentinel port #{port.inspect} is not a port number, in #{shown}"
      end

      [host, port.to_i]
    end

    def database(text, shown)
      raise ArgumentError, "the database must be a number, got #{text.inspect} in #{shown}" unless text.match?(/\A\d+\z/)

      Integer(text, 10)
    end

    def unescape(text)
      URI.decode_www_form_component(text.gsub("+", "%2B"))
    rescue ArgumentError
      text
    end
  end
end
