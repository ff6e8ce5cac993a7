// A self-signed certificate for DNS name `localhost` (not 127.0.0.1), valid until 2126, and its key:
// for tests and the benchmark's `--tls`, which serve https on loopback only. Made with openssl req
// -x509 (EC P-256). Never used by the app itself.
export const LOCALHOST_CERT = `-----BEGIN CERTIFICATE-----
MIIBlDCCATugAwIBAgIUGBmSwUkOTjit31ktjBmTyf/LoB8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNTIwMjQxNVoYDzIxMjYxMTEx
MjAyNDE1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQMM7bRd/OHx5dUUx5bY6ChPA/AOwdK2a0W+H+pwHdNZx2uHIDhZwvD
9WO9HLs1EXYqvTVA+k6Rrkk4d0xMFPlKo2kwZzAdBgNVHQ4EFgQUNJ+V4itxcFEX
XtjYaUXjpwzFqWkwHwYDVR0jBBgwFoAUNJ+V4itxcFEXXtjYaUXjpwzFqWkwDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
RwAwRAIgaLwAsuNkazJ/AYHc1w6e0hPKiEDQwDTCeA2nbFN0Tv8CIDx98MiZ3IhX
Mp8O3AKS9AOJCzURHgshd4Z9oqnb6Brn
-----END CERTIFICATE-----
`;

export const LOCALHOST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJwtKeCtq3gY0NL1M
040IkIbCqJn444DQcinZ5XBrDwuhRANCAAQMM7bRd/OHx5dUUx5bY6ChPA/AOwdK
2a0W+H+pwHdNZx2uHIDhZwvD9WO9HLs1EXYqvTVA+k6Rrkk4d0xMFPlK
-----END PRIVATE KEY-----
`;
