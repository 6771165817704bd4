package main

import (
	"encoding/json"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

func TestTokenLife(t *testing.T) {
	tests := []struct {
		name    string
		secret  *vault.Secret
		want    time.Duration
		wantErr bool
	}{
		{"leased", &vault.Secret{LeaseDuration: 2000, Data: map[string]any{"expires_in": json.Number("2000")}}, 2000 * time.Second, false},
		{"lease-free", &vault.Secret{LeaseDuration: 0, Data: map[string]any{"expires_in": json.Number("1000")}}, 1000 * time.Second, false},
		{"lease-free, decoded as float", &vault.Secret{Data: map[string]any{"expires_in": float64(1000)}}, 1000 * time.Second, false},
		{"no lease, no expires_in", &vault.Secret{Data: map[string]any{}}, 0, true},
		{"no lease, expires_in 0", &vault.Secret{Data: map[string]any{"expires_in": json.Number("0")}}, 0, true},
	}
	for _, tt := range tests {
		got, err := tokenLife(tt.secret)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
