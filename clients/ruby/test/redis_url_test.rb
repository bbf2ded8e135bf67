# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "redis"
require "zeromesh/redis_url"

# ZEROMESH_REDIS_URL -> Redis.new options (RedisURL): every form, the Sentinel form's parts, clear errors.
class RedisURLTest < Minitest::Test
  URL = Zeromesh::RedisURL

  def test_plain_urls_go_to_the_redis_gem_unchanged_with_the_callers_options
    assert_equal({ url: "redis://:pw@127.0.0.1:6390/2", timeout: 2.0 }, URL.options("redis://:pw@127.0.0.1:6390/2", timeout: 2.0))
    assert_equal({ url: "unix:///tmp/x/redis.sock" }, URL.options("unix:///tmp/x/redis.sock"))
    assert_equal({ url: "rediss://h:6380/0" }, URL.options("rediss://h:6380/0"))
    refute URL.sentinel?("redis://h:1/0")
    assert_nil URL.min_replicas("redis://h:1/0")
  end

  def test_sentinel_url_parts
    u = URL.parse_sentinel("redis+sentinel://:pw@10.0.0.1:26379, h2:26380,[::1]:26381/mymaster/4" \
                           "?sentinel_password=sp&ssl=true&ssl_ca_certs=/etc/ca.pem&socket_timeout=0.5&min_replicas=1")
    assert_equal [["10.0.0.1", 26_379], ["h2", 26_380], ["::1", 26_381]], u.sentinels
    assert_equal ["mymaster", 4, nil, "pw", "sp"], [u.service, u.db, u.username, u.password, u.sentinel_password]
    assert_equal [true, "/etc/ca.pem", 0.5, 1], [u.ssl, u.ssl_ca_certs, u.socket_timeout, u.min_replicas]
    bare = URL.parse_sentinel("redis+sentinel://h:26379/svc")
    assert_equal [0, nil, false, nil, nil], [bare.db, bare.password, bare.ssl, bare.min_replicas, bare.socket_timeout]
    user = URL.parse_sentinel("REDIS+SENTINEL://app:p%40ss+word@h:1/my%2Dsvc")
    assert_equal ["app", "p@ss+word", "my-svc"], [user.username, user.password, user.service]
    assert_equal 2, URL.min_replicas("redis+sentinel://h:1/svc?min_replicas=2")
  end

  def test_sentinel_options_for_redis_new
    opts = URL.options("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/svc/1?sentinel_password=sp",
                       connect_timeout: 1.0, timeout: 2.0)
    assert_equal "svc", opts[Redis::VERSION.to_i >= 5 ? :name : :host]
    assert_equal [:master, 1, "pw", 1.0, 2.0], opts.values_at(:role, :db, :password, :connect_timeout, :timeout)
    assert_equal [{ host: "127.0.0.1", port: 26_379, password: "sp" }, { host: "127.0.0.1", port: 26_380, password: "sp" }],
                 opts[:sentinels]
    refute opts.key?(:url)
    refute opts.key?(:ssl)

    tls = URL.options("redis+sentinel://h:1/svc?ssl=true&ssl_ca_certs=/etc/ca.pem&socket_timeout=0.25",
                      connect_timeout: 1.0, timeout: 2.0)
    assert_equal [true, { ca_file: "/etc/ca.pem" }, 0.25], tls.values_at(:ssl, :ssl_params, :timeout)
    refute tls.key?(:connect_timeout), "the URL's socket_timeout wins over the caller's timeouts"
    assert_equal [{ host: "h", port: 1 }], tls[:sentinels]
  end

  def test_the_redis_gem_takes_the_options_and_names_the_service
    redis = Redis.new(**URL.options("redis+sentinel://127.0.0.1:1/svc/3"))
    assert_equal 3, redis._client.options[:db]
    error = assert_raises(Redis::CannotConnectError) { redis.ping }
    assert_match(/sentinel/i, error.message)
  ensure
    redis&.close
  end

  MALFORMED = {
    "redis+sentinel:///svc" => "empty sentinel address",
    "redis+sentinel://h:1,,h:2/svc" => "empty sentinel address",
    "redis+sentinel://h:1,/svc" => "empty sentinel address",
    "redis+sentinel://h/svc" => "not HOST:PORT",
    "redis+sentinel://:26379/svc" => "not HOST:PORT",
    "redis+sentinel://h:port/svc" => "not a port number",
    "redis+sentinel://h:70000/svc" => "not a port number",
    "redis+sentinel://h:0/svc" => "not a port number",
    "redis+sentinel://h:1" => "no Sentinel service name",
    "redis+sentinel://h:1/" => "no Sentinel service name",
    "redis+sentinel://h:1//2" => "no Sentinel service name",
    "redis+sentinel://h:1/svc/x" => "the database must be a number",
    "redis+sentinel://h:1/svc/-1" => "the database must be a number",
    "redis+sentinel://h:1/svc/1/2" => "only a database number may follow",
    "redis+sentinel://h:1/svc/" => "only a database number may follow",
    "redis+sentinel://h:1/svc?ssl=maybe" => "ssl must be true or false",
    "redis+sentinel://h:1/svc?socket_timeout=soon" => "socket_timeout must be a positive number",
    "redis+sentinel://h:1/svc?socket_timeout=0" => "socket_timeout must be a positive number",
    "redis+sentinel://h:1/svc?min_replicas=-1" => "min_replicas must be a whole number",
    "redis+sentinel://h:1/svc?sentinel_password=" => "option sentinel_password is empty",
    "redis+sentinel://h:1/svc?colour=red" => 'unknown option "colour"',
    "http://h:1/0" => 'unknown Redis URL scheme "http"',
    "localhost:6379" => "a Redis URL looks like"
  }.freeze

  def test_malformed_urls_say_what_is_wrong
    MALFORMED.each do |url, says|
      error = assert_raises(ArgumentError, url) { URL.options(url) }
      assert_includes error.message, says, url
    end
  end

  def test_errors_never_show_a_password
    ["redis+sentinel://:topsecret@h:1/svc/x", "redis+sentinel://u:topsecret@h/svc",
     "redis+sentinel://h:1/svc?sentinel_password=topsecret&ssl=perhaps",
     "redis+sentinel://h:1/svc?sentinel_password=topsecret&x=%zz", "ftp://u:topsecret@h/"].each do |url|
      error = assert_raises(ArgumentError, url) { URL.options(url) }
      refute_includes error.message, "topsecret"
      assert_includes error.message, "***"
    end
  end

  def test_redact
    {
      "redis://:pw@h:6379/0" => "redis://:***@h:6379/0",
      "redis://user:pw@h:6379/0" => "redis://user:***@h:6379/0",
      "redis://h:6379/0?password=pw&db=1" => "redis://h:6379/0?password=***&db=1",
      "unix:///tmp/r.sock?password=pw" => "unix:///tmp/r.sock?password=***",
      "redis+sentinel://:pw@h:1,h:2/svc?sentinel_password=sp&ssl=true" =>
        "redis+sentinel://:***@h:1,h:2/svc?sentinel_password=***&ssl=true",
      "redis+sentinel://h:1/svc" => "redis+sentinel://h:1/svc",
      "redis://user@h:6379/0" => "redis://user@h:6379/0"
    }.each { |url, shown| assert_equal shown, URL.redact(url), url }
  end

  def test_a_redis_queue_refuses_a_malformed_url_before_connecting
    require "zeromesh/redis_queue"
    error = assert_raises(ArgumentError) { Zeromesh::RedisQueue.new(queue: "q", redis_url: "redis+sentinel://h:1") }
    assert_includes error.message, "no Sentinel service name"
  end
end
