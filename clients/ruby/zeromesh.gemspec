# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "lib/zeromesh/version"

Gem::Specification.new do |spec|
  spec.name = "zeromesh"
  spec.version = Zeromesh::VERSION
  spec.summary = "Ruby client and worker for the zeromesh ZeroMQ service mesh (ZMSH/1)"
  spec.description = "Work queues, request/reply and pub/sub through the zeromesh broker over ZeroMQ, " \
                     "and reliable direct consumption of its Redis queues."
  spec.authors = ["the zeromesh maintainers"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.0"

  # lib/zeromesh/redis/*.lua: the Lua scripts, copied from protocol/redis/ by `rake build`.
  spec.files = Dir["lib/**/*.rb", "lib/zeromesh/redis/*.lua", "bin/*", "README.md"]
  spec.bindir = "bin"
  spec.executables = ["zeromesh-conformance"]
  spec.require_paths = ["lib"]

  spec.add_dependency "ffi-rzmq", "~> 2.0"
  spec.add_dependency "msgpack", ">= 1.0"
  spec.add_dependency "redis", ">= 4.6", "< 6" # BLMOVE; RedisQueue only, loaded on first use
  spec.add_development_dependency "minitest", "~> 5.0"
  spec.metadata["rubygems_mfa_required"] = "true"
end
