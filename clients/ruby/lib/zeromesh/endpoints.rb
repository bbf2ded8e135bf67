# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # Endpoint lists (SPEC "Endpoint lists"): ZEROMESH_BROKER, ZEROMESH_PUB and
  # the matching arguments name one endpoint or several, comma-separated
  # ("tcp://h1:5555,tcp://h2:5555"). This is the one place they are parsed.
  module Endpoints
    module_function

    # The endpoints of value (a String, or an Array of them) in order;
    # whitespace around commas is ignored. ArgumentError for an empty item,
    # which is always a typo (a trailing comma, ",,"), never "no broker".
    def parse(value, what = "endpoint")
      items = value.is_a?(Array) ? value.flat_map { |v| v.to_s.split(",", -1) } : value.to_s.split(",", -1)
      list = items.map(&:strip)
      if list.empty? || list.any?(&:empty?)
        raise ArgumentError, "empty #{what} in #{value.is_a?(Array) ? value.join(",").inspect : value.to_s.inspect}"
      end

      list
    end
  end
end
