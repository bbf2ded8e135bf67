# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# zeromesh for Ruby: a client and worker for the ZMSH/1 broker
# (protocol/SPEC.md), and direct consumption of its Redis queues.
require_relative "zeromesh/version"
require_relative "zeromesh/wire"
require_relative "zeromesh/defaults"
require_relative "zeromesh/errors"
require_relative "zeromesh/logging"
require_relative "zeromesh/codec"
require_relative "zeromesh/client"
require_relative "zeromesh/worker"

module Zeromesh
  # RedisQueue needs the redis gem, which the broker client does not: load it on first use.
  autoload :RedisQueue, File.expand_path("zeromesh/redis_queue", __dir__)
  # ZEROMESH_REDIS_URL (plain or redis+sentinel://) -> Redis.new options.
  autoload :RedisURL, File.expand_path("zeromesh/redis_url", __dir__)
end
