# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# Runs the whole Ruby suite: ruby clients/ruby/test/run.rb [minitest options]
Dir[File.join(__dir__, "*_test.rb")].sort.each { |f| require f }
