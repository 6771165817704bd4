// Command go-client shows an application holding a Naver Commerce token through Vault: it
// reads navercommerce/token/<role>, calls the Naver Commerce API with it, and reads again
// before the lease ends (the lease is the token's remaining life).
//
//	VAULT_ADDR=... VAULT_TOKEN=... go run ./examples/go-client -role my-store
//
// The Vault address and token come from the usual VAULT_* environment variables.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	vault "github.com/hashicorp/vault/api"
)

func main() {
	mount := flag.String("mount", "navercommerce", "where the secrets engine is mounted")
	role := flag.String("role", "my-store", "role to read a token for")
	apiBase := flag.String("api", "https://api.commerce.naver.com/external", "Naver Commerce API base URL")
	rounds := flag.Int("rounds", 0, "how many times to read and use a token (0: forever)")
	maxWait := flag.Duration("max-wait", time.Hour, "longest wait between reads")
	flag.Parse()

	client, err := vault.NewClient(vault.DefaultConfig())
	if err != nil {
		log.Fatalf("creating the Vault client: %v", err)
	}
	for i := 0; *rounds == 0 || i < *rounds; i++ {
		wait, err := useToken(context.Background(), client, *mount, *role, *apiBase)
		if err != nil {
			log.Fatal(err)
		}
		if *rounds != 0 && i == *rounds-1 {
			break
		}
		time.Sleep(min(wait, *maxWait))
	}
}

// useToken reads a token, calls the API with it, and says when to read again: at 90% of the
// lease, as Vault Agent does, which is inside Naver's 30-minute renewal window (at 90% of
// expires_in on a lease-free role).
func useToken(ctx context.Context, client *vault.Client, mount, role, apiBase string) (time.Duration, error) {
	secret, err := client.Logical().ReadWithContext(ctx, mount+"/token/"+role)
	if err != nil {
		return 0, fmt.Errorf("reading the token for role %q: %w", role, err)
	}
	if secret == nil {
		return 0, fmt.Errorf("no token for role %q", role)
	}
	token, _ := secret.Data["access_token"].(string)
	life, err := tokenLife(secret)
	if err != nil {
		return 0, fmt.Errorf("the token for role %q: %w", role, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiBase+"/v1/seller/account", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("calling the Naver Commerce API: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("naver commerce API answered %s", resp.Status)
	}
	var account map[string]any
	_ = json.Unmarshal(body, &account)
	fmt.Fprintf(os.Stdout, "token for role %s (life %s) works: account %v\n", role, life, account["accountId"])
	return life * 9 / 10, nil
}

// tokenLife is how long the token read has left: its lease, or on a lease-free role
// (lease=false, lease_duration 0) its expires_in. Reading again at 90% of a zero lease would
// read in a hot loop.
func tokenLife(secret *vault.Secret) (time.Duration, error) {
	if secret.LeaseDuration > 0 {
		return time.Duration(secret.LeaseDuration) * time.Second, nil
	}
	var seconds int64
	switch v := secret.Data["expires_in"].(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return 0, fmt.Errorf("expires_in %q: %w", v, err)
		}
		seconds = n
	case float64:
		seconds = int64(v)
	default:
		return 0, fmt.Errorf("no lease and no expires_in (%T)", v)
	}
	if seconds <= 0 {
		return 0, fmt.Errorf("no lease and expires_in %d", seconds)
	}
	return time.Duration(seconds) * time.Second, nil
}
