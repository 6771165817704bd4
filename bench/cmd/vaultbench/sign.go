package main

import (
	"encoding/base64"
	"errors"
	"strconv"

	//lint:ignore SA1019 bcrypt is built from Blowfish, and Naver's signature is bcrypt.
	"golang.org/x/crypto/blowfish"
)

// An independent signer for raw requests to the emulator's token endpoint (the upstream
// round-trip measurement): bcrypt of client_id + "_" + timestamp with the client secret as
// the salt, as OpenBSD's bcrypt computes it, standard base64 of the 60-byte result. The
// plugin's own signer is unexported; this one is checked by the emulator, which verifies
// every signature with x/crypto/bcrypt.

var bcryptB64 = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

func sign(secret, clientID, timestamp string) (string, error) {
	if len(secret) != 29 {
		return "", errors.New("client secret is not a 29-character bcrypt salt")
	}
	cost, err := strconv.Atoi(secret[4:6])
	if err != nil {
		return "", err
	}
	salt, err := bcryptB64.DecodeString(secret[7:])
	if err != nil || len(salt) != 16 {
		return "", errors.New("bad salt")
	}
	key := append([]byte(clientID+"_"+timestamp), 0)
	if len(key) > 72 {
		key = key[:72]
	}
	c, err := blowfish.NewSaltedCipher(key, salt)
	if err != nil {
		return "", err
	}
	for i := uint64(0); i < 1<<uint(cost); i++ {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(salt, c)
	}
	data := []byte("OrpheanBeholderScryDoubt")
	for i := 0; i < 24; i += 8 {
		for range 64 {
			c.Encrypt(data[i:i+8], data[i:i+8])
		}
	}
	hash := secret[:7] + bcryptB64.EncodeToString(salt) + bcryptB64.EncodeToString(data[:23])
	return base64.StdEncoding.EncodeToString([]byte(hash)), nil
}
