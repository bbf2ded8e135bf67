# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"
require_relative "defaults"
require_relative "codec"
require_relative "errors"
require_relative "transport"
require_relative "wire"

module Zeromesh
  # The sending loops of Client#push (one job until confirmed) and
  # Client#push_many (over a PushWindow: what goes out, in which form, and when
  # it is settled). A part of Client (it uses the client's transport, #endpoint
  # and #after_move), kept apart to keep the client file small.
  module Pushing
    private

    # Send one PUSH (job id, its frames) until it is confirmed, again every
    # PUSH_RESEND_S and after a move to another broker; returns the id, or
    # the id of the job that holds its unique key. Raises what refused it.
    def send_push(id, queue, frames, timeout)
      waiter = Waiter.new
      @transport.register([id], waiter)
      misses = []
      begin
        since = Clock.now
        deadline = since + timeout
        loop do
          begin
            @transport.send(frames, deadline, since: since)
            break if @transport.wait(waiter, [deadline, Clock.now + Defaults::PUSH_RESEND_S].min, since: since)
          rescue Transport::Moved => e
            misses = after_move(e, misses) # and resend at once, same id, to the new broker
            next
          end

          if Clock.now >= deadline
            raise TimeoutError, "push #{id} to #{queue.inspect} unconfirmed after #{timeout}s " \
                                "(is the broker at #{endpoint} up?)"
          end
        end
      rescue UnreachableError => e
        raise e.with_jobs(1)
      ensure
        @transport.unregister([id])
      end
      raise Zeromesh.error_from_header(waiter.error) if waiter.error

      waiter.holder || id
    end

    # push_many's loop: send what the window says is due, wait for answers or
    # the next resend, forget what is settled. Raises the first refusal once
    # everything sent is settled, TimeoutError after timeout without progress.
    def run_window(win, base, bodies, timeout)
      keys_of = {} # message id -> the keys registered for it
      since = Clock.now
      deadline = since + timeout
      progress = 0
      misses = []
      begin
        loop do
          win.rest # before reading the window, so no wake-up is lost
          now = Clock.now
          begin
            win.due(now).each do |message_id, indices|
              job_ids = indices.map { |i| win.ids[i] }
              keys_of[message_id] = keys = [message_id, *job_ids]
              @transport.register(keys, win)
              form, frames = push_frames(win.command, base, message_id, job_ids, indices.map { |i| bodies[i] })
              win.note_form(message_id, form)
              @transport.send(frames, deadline, since: since)
            end
            break if win.done?

            if win.confirmed != progress
              progress = win.confirmed
              deadline = now + timeout
            elsif now >= deadline
              raise TimeoutError, "#{win.unconfirmed_count} of #{win.ids.size} pushes to #{base["queue"].inspect} " \
                                  "unconfirmed after #{timeout}s (is the broker at #{endpoint} up?)"
            end
            @transport.wait(win, [deadline, win.next_resend].min, since: since)
          rescue Transport::Moved => e
            misses = after_move(e, misses)
            win.resend_all # to the new broker, same job ids (its dedupe keeps each once)
          end
          # Forget what is settled as we go: the waiter table stays about the size of the window.
          win.settled.each { |message_id| @transport.unregister(keys_of.delete(message_id)) }
        end
      ensure
        keys_of.each_value { |keys| @transport.unregister(keys) }
      end
      raise Zeromesh.error_from_header(win.first_error) if win.first_error
    end

    # One message of pushes in the window's form; returns [the form it went in, frames].
    # PUSH items for a broker without batches; else PUSH_PACKED while the bodies
    # fit its 1 MiB frame (SPEC.md 3.5), PUSH_BATCH (a frame per body) when not.
    def push_frames(form, base, message_id, job_ids, bodies)
      if form == Wire::PUSH
        items = job_ids.zip(bodies).map { |id, body| [{ "id" => id }.merge(base), body] }
        return [Wire::PUSH, Codec.pack_items(Wire::PUSH, items)]
      end

      header = { "id" => message_id }.merge(base, "ids" => job_ids)
      if form == Wire::PUSH_PACKED && bodies.sum(&:bytesize) <= Wire::MAX_PACKED_BYTES
        [Wire::PUSH_PACKED, Codec.pack_packed(Wire::PUSH_PACKED, header, bodies)]
      else
        [Wire::PUSH_BATCH, Codec.pack_batch(Wire::PUSH_BATCH, header, bodies)]
      end
    end
  end
end
