# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "open3"

# CURVE keys made by `python -m zeromesh keys new` (the tool operators use) and
# a broker secured with them: the broker's pair, clients' pairs with roles
# (public certificates in the broker's clients directory, secrets apart),
# and strangers the broker has never heard of.
class KeySet
  ROLES = {
    "producer" => ["producer"],
    "orders-producer" => ["producer:orders,orders.*"],
    "worker" => ["worker"],
    "render-worker" => ["worker:render.*"],
    "subscriber" => ["subscriber"],
    "admin" => ["admin"],
    "everything" => %w[producer worker subscriber admin]
  }.freeze

  attr_reader :root, :clients, :broker_public, :broker_secret

  def initialize(root, roles = ROLES)
    @root = root
    @clients = File.join(root, "clients")
    @secrets = File.join(root, "secrets")
    FileUtils.mkdir_p([@clients, @secrets])
    @broker_public, @broker_secret = keys_new("broker", File.join(root, "broker"), [])
    roles.each { |name, grants| add(name, grants) }
  end

  # A new client key with grants; its public certificate goes to the clients directory.
  def add(name, grants)
    public_path, secret = keys_new(name, @secrets, grants)
    File.rename(public_path, File.join(@clients, File.basename(public_path)))
    secret
  end

  def remove(name)
    File.unlink(File.join(@clients, "#{name}.key"))
  end

  def secret(name)
    File.join(@secrets, "#{name}.key_secret")
  end

  # A key the broker has never seen.
  def stranger(name = "stranger")
    keys_new(name, File.join(@root, "strangers"), ["producer"])[1]
  end

  # Let a stranger in: its public certificate goes to the clients directory.
  def admit(name)
    File.rename(File.join(@root, "strangers", "#{name}.key"), File.join(@clients, "#{name}.key"))
  end

  # Client keyword arguments for key name.
  def options(name)
    { curve_server: @broker_public, curve_secret: secret(name) }
  end

  def broker_args
    ["--curve-secret", @broker_secret, "--curve-clients", @clients]
  end

  # A broker secured with these keys (started); its readiness check uses "everything".
  def start_broker(**kwargs)
    TestSupport::Broker.new(args: broker_args, client_options: options("everything"), **kwargs).start
  end

  private

  # [public path, secret path] of a fresh pair written by the zeromesh CLI.
  def keys_new(name, dir, grants)
    cmd = [TestSupport.python, "-m", "zeromesh", "keys", "new", name, "--dir", dir]
    grants.each { |grant| cmd.push("--role", grant) }
    out, status = Open3.capture2e(*cmd)
    raise "#{cmd.join(" ")} failed:\n#{out}" unless status.success?

    [File.join(dir, "#{name}.key"), File.join(dir, "#{name}.key_secret")]
  end
end
