# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # All timing uses this monotonic clock, in seconds (SPEC.md section 13).
  module Clock
    def self.now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
