# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "securerandom"

module Zeromesh
  # Unique ids as SPEC.md section 2.3 recommends: a random 64-bit hex prefix per
  # generator, a hyphen and a counter in hex ("5f2a9c1e0b7d4a63-1a"). Thread-safe.
  class IdGenerator
    attr_reader :prefix

    def initialize(prefix = nil)
      @prefix = prefix || SecureRandom.hex(8)
      @count = 0
      @lock = Mutex.new
    end

    def call
      n = @lock.synchronize { @count += 1 }
      "#{@prefix}-#{n.to_s(16)}"
    end
    alias next_id call
  end
end
