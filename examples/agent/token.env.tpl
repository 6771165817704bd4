{{ with secret "navercommerce/token/my-store" -}}
NAVER_COMMERCE_ACCESS_TOKEN={{ .Data.access_token }}
NAVER_COMMERCE_TOKEN_EXPIRES_AT={{ .Data.expires_at }}
{{- end }}
