# Vault Agent renders the Naver Commerce token into files and keeps them current: the lease
# is the token's remaining life, and the agent fetches a new token at ~90% of it, which is
# inside Naver's 30-minute renewal window (template_config below says why; lease-free roles
# are re-read on an interval instead).
#   VAULT_ADDR=http://127.0.0.1:8200 vault agent -config=examples/agent/agent.hcl
# Replace the token_file auto_auth with your real method (approle, kubernetes, ...).
pid_file = "./agent.pid"

vault {
  address = "http://127.0.0.1:8200"
}

auto_auth {
  method "token_file" {
    config = {
      token_file_path = "./vault-token"
    }
  }
}

template_config {
  exit_on_retry_failure = true

  # Leased roles (the default). The lease is the token's remaining life and is not
  # renewable, so Agent reads the secret again at lease_renewal_threshold x lease (staggered
  # by +-0.05). A new token exists only in Naver's last 30 minutes of the old one: at 0.90 a
  # fresh 3-hour token is re-read with ~18 minutes left, inside that window, and the old
  # token still has time to serve while the file is rewritten. Lower than ~0.83 re-reads
  # while Naver would still hand back the same token (Agent just reads again later); higher
  # than 0.95 leaves minutes or less before expiry.
  lease_renewal_threshold = 0.90

  # Lease-free roles (lease=false) have no lease to time the re-read by: Agent reads them
  # again every static_secret_render_interval (default 5m; staggered like the threshold, so
  # at 0.85-0.95 of it). The plugin hands out a new token from the moment the old one has
  # less than 30 minutes left, so any interval of a few minutes renders it long before the
  # old one expires; a lease-free read writes nothing to Vault's storage, so a shorter
  # interval costs little.
  static_secret_render_interval = "2m"
}

# The bare token, for tools that read a file.
template {
  source      = "./token.tpl"
  destination = "./naver-token.txt"
  perms       = "0600"
}

# An env file, for apps that read their environment.
template {
  source      = "./token.env.tpl"
  destination = "./naver-token.env"
  perms       = "0600"
}
