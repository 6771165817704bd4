# Vault Agent renders the Naver Commerce token into files and keeps them current: the lease
# is the token's remaining life, and the agent fetches a new token at ~90% of it, which is
# inside Naver's 30-minute renewal window.
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
