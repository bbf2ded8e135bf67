# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"

module Zeromesh
  # A one-way flag threads can wait on with a timeout (Ruby 3.1's Queue#pop has none).
  class Latch
    def initialize
      @lock = Mutex.new
      @cond = ConditionVariable.new
      @set = false
    end

    def set
      @lock.synchronize do
        @set = true
        @cond.broadcast
      end
    end

    def set?
      @set
    end

    # true once set, false if timeout seconds pass first (nil: wait for ever).
    def wait(timeout = nil)
      deadline = timeout && (Clock.now + timeout)
      @lock.synchronize do
        until @set
          remaining = deadline && (deadline - Clock.now)
          return false if remaining && remaining <= 0

          @cond.wait(@lock, remaining)
        end
        true
      end
    end
  end
end
