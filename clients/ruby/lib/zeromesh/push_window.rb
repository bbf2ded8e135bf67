# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "wire"

module Zeromesh
  # The bookkeeping of Client#push_many: which jobs to send or resend now, and
  # when all are settled. No sockets, so the rules can be tested alone; the
  # same rules as clients/python/zeromesh/pipeline.py.
  #
  # At most window jobs are unconfirmed at once, sent batch per message, each
  # message under a message id of its own. An unconfirmed job is sent again
  # with the same job id (under a new message id) every resend_s: the broker
  # confirms a job it holds again without queueing it twice. After the first
  # ERROR nothing new goes out, and what is in flight drains.
  #
  # Confirmations come per job (CONFIRM ids) or per message (CONFIRM batches:
  # every job of that PUSH_PACKED or PUSH_BATCH). #command is the form to send
  # in, PUSH_PACKED first; a broker that does not know the form a message went
  # in answers it with unknown_command, and then #command steps down (to
  # PUSH_BATCH, then to PUSH items) and those jobs go again at once.
  #
  # It is also the Waiter registered under every job and message id it sends:
  # Transport#wait returns when it made progress (wake?).
  class PushWindow
    # The forms a message of pushes can take, the cheapest first; each broker revision knows a longer prefix.
    FORMS = [Wire::PUSH_PACKED, Wire::PUSH_BATCH, Wire::PUSH].freeze

    attr_reader :ids, :command, :confirmed, :first_error

    # ArgumentError unless 1 <= window and 1 <= batch <= MAX_ITEMS_PER_MESSAGE.
    def self.check_sizes(window, batch)
      unless window.is_a?(Integer) && window >= 1
        raise ArgumentError, "window must be an Integer of at least 1, not #{window.inspect}"
      end
      return if batch.is_a?(Integer) && batch.between?(1, Wire::MAX_ITEMS_PER_MESSAGE)

      raise ArgumentError, "batch must be an Integer from 1 to #{Wire::MAX_ITEMS_PER_MESSAGE}, not #{batch.inspect}"
    end

    # ids: the job ids, one per body; new_id: makes message ids (#call).
    def initialize(ids, window:, batch:, resend_s:, new_id:)
      PushWindow.check_sizes(window, batch)
      @ids = ids
      @window = window
      @batch = [batch, window].min # a batch larger than the window would never find room
      @resend_s = resend_s
      @new_id = new_id
      @next_index = 0    # ids before this have been sent
      @unconfirmed = {}  # job id -> index: sent and not settled
      @refused = {}      # job id -> true: an ERROR refused it
      @messages = {}     # message id -> indices of the jobs it carried, until it is settled
      @sent_as = {}      # message id -> the form it went in (the sender notes it)
      @open = {}         # message id -> true while a job of it may be unsettled
      @replaced = {}     # open message ids whose jobs went again under another message id
      @closed = []       # message ids settled since the last #settled
      @sent = []         # [sent at, message id], oldest first: what may come due for a resend
      @redo = []         # message ids refused as unknown_command: due again at once, in order
      @confirmed = 0
      @first_error = nil
      @command = FORMS.first
      @woken = false
    end

    # -- as a Waiter (Transport dispatch calls these) ------------------------

    def wake?
      @woken
    end

    # Called before looking at the state: the next progress wakes Transport#wait again.
    def rest
      @woken = false
    end

    # holder (a unique push's duplicate) never comes: push_many sends no unique keys.
    def on_confirm(job_id, _holder = nil)
      return unless @unconfirmed.delete(job_id)

      @confirmed += 1
      @woken = true
    end

    def on_confirm_batch(message_id)
      indices = @messages[message_id] or return
      settled = indices.count { |i| @unconfirmed.delete(@ids[i]) }
      close(message_id)
      return if settled.zero?

      @confirmed += settled
      @woken = true
    end

    def on_reply(_header, _body); end

    # re names a job (refused alone) or a whole message (the broker could not read it).
    def on_error(header)
      re = header["re"]
      if @messages.key?(re)
        message_error(re, header)
      elsif @unconfirmed.delete(re)
        @refused[re] = true
        @first_error ||= header
        @woken = true
      end
    end

    # -- for the sender --------------------------------------------------------

    # Every sent job is settled and nothing more will be sent.
    def done?
      @unconfirmed.empty? && (@next_index >= @ids.size || !@first_error.nil?)
    end

    def unconfirmed_count
      @unconfirmed.size
    end

    # The client moved to another broker: every job sent and unconfirmed goes
    # again at the next #due (same job ids, new message ids), oldest first.
    def resend_all
      @redo.concat(@sent.map { |_, message_id| message_id })
      @sent.clear
    end

    # [message id, indices] to send now, one per message: resends first, then new jobs.
    def due(now)
      out = []
      @redo.each { |message_id| resend(message_id, now, out) }
      @redo.clear
      while (entry = @sent.first) && entry[0] + @resend_s <= now
        @sent.shift
        resend(entry[1], now, out)
      end
      send_new(now, out) unless @first_error
      out
    end

    # The sender says which form message_id went in (PUSH_PACKED bodies over 1 MiB go as PUSH_BATCH).
    def note_form(message_id, form)
      @sent_as[message_id] = form
    end

    # When #due next has a resend to offer (Float::INFINITY if nothing is in flight).
    def next_resend
      entry = sweep
      entry ? entry[0] + @resend_s : Float::INFINITY
    end

    # Message ids whose jobs are all settled since the last call: their keys may be unregistered.
    def settled
      sweep
      @replaced.keys.each { |message_id| close(message_id) unless pending?(message_id) }
      out = @closed
      @closed = []
      out
    end

    # Ids sent and confirmed (neither unconfirmed nor refused), in push order.
    def accepted
      @ids.first(@next_index).reject { |id| @unconfirmed.key?(id) || @refused.key?(id) }
    end

    private

    # Take new jobs while a whole batch fits the window, rather than dribble tiny messages.
    def send_new(now, out)
      count = @ids.size
      while @next_index < count
        size = [@batch, count - @next_index].min
        break if @window - @unconfirmed.size < size

        indices = (@next_index...(@next_index + size)).to_a
        indices.each { |i| @unconfirmed[@ids[i]] = i }
        @next_index += size
        record(now, indices, out)
      end
    end

    def record(now, indices, out)
      message_id = @new_id.call
      @messages[message_id] = indices
      @open[message_id] = true
      @sent << [now, message_id]
      out << [message_id, indices]
    end

    # Drop settled messages from the front of @sent (closing those settled job
    # by job); returns the first entry still waiting for answers, if any.
    def sweep
      while (entry = @sent.first)
        message_id = entry[1]
        if live?(message_id)
          return entry if pending?(message_id)

          close(message_id)
        end
        @sent.shift
      end
      nil
    end

    # Still the carrier of its jobs: open, and not resent under another id.
    def live?(message_id)
      @open.key?(message_id) && !@replaced.key?(message_id)
    end

    def pending(message_id)
      @messages[message_id].select { |i| @unconfirmed.key?(@ids[i]) }
    end

    def pending?(message_id)
      @messages[message_id].any? { |i| @unconfirmed.key?(@ids[i]) }
    end

    def close(message_id)
      return unless @open.delete(message_id)

      @replaced.delete(message_id)
      @messages.delete(message_id)
      @sent_as.delete(message_id)
      @closed << message_id
    end

    # The jobs of message_id still unconfirmed go again under a new message id (which closes it once they settle).
    def resend(message_id, now, out)
      return unless live?(message_id)

      still = pending(message_id)
      if still.empty?
        close(message_id)
      else
        @replaced[message_id] = true
        record(now, still, out)
      end
    end

    def message_error(message_id, header)
      if header["code"] == Wire::E_UNKNOWN_COMMAND
        refused_form = @sent_as.fetch(message_id, @command)
        # PUSH refused: a broker that takes no pushes at all, nothing to step down to.
        if refused_form != Wire::PUSH
          # Several refusals of one form step down once; one of a form already left behind changes nothing.
          @command = FORMS[[FORMS.index(@command), FORMS.index(refused_form) + 1].max]
          @redo << message_id # due again at once, in the order refused, which is the order sent
          @woken = true
          return
        end
      end
      @messages[message_id].each do |i|
        id = @ids[i]
        @refused[id] = true if @unconfirmed.delete(id)
      end
      @first_error ||= header
      @woken = true
    end
  end
end
