# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# The subscriber's gap rule (SPEC 7 and 13), case by case from the shared
# vectors every language runs: protocol/vectors/gaps.json.
class GapVectorsTest < Minitest::Test
  include TestSupport

  VECTORS_FILE = File.join(TestSupport::VECTORS, "gaps.json")

  def test_every_case_of_gaps_json
    cases = JSON.parse(File.read(VECTORS_FILE))["cases"]
    refute_empty cases
    cases.each do |c|
      tracker = Zeromesh::GapTracker.new
      got = c["events"].map { |topic, seq, epoch, broker| tracker.observe(topic, seq, epoch, broker || "") }
      assert_equal c["gaps"], got, "gaps.json case #{c["name"].inspect}"
    end
  end
end
