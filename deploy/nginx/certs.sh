#!/bin/sh
# The `certs` one-shot (compose.prod.yaml): put a certificate and key into the volume nginx
# reads (/etc/nginx/tls, read-only there). Runs in the nginx image (its openssl CLI).
#  - The operator's pair from /in (TLS_DIR, default ./deploy/tls): tls.crt + tls.key, or
#    certbot's fullchain.pem + privkey.pem. Checked to belong together, then copied.
#  - None given: the volume's pair is kept; on first start a self-signed one is made for
#    localhost and 127.0.0.1 (browsers warn; `curl --cacert` it, or bring a real one).
set -eu
in=/in
out=/etc/nginx/tls
crt="" key=""
if [ -s "$in/tls.crt" ] && [ -s "$in/tls.key" ]; then
  crt="$in/tls.crt" key="$in/tls.key"
elif [ -s "$in/fullchain.pem" ] && [ -s "$in/privkey.pem" ]; then
  crt="$in/fullchain.pem" key="$in/privkey.pem"
fi
umask 077
if [ -n "$crt" ]; then
  cert_pub=$(openssl x509 -in "$crt" -noout -pubkey)
  key_pub=$(openssl pkey -in "$key" -pubout)
  if [ "$cert_pub" != "$key_pub" ]; then
    echo "certs: $crt and $key do not belong together" >&2
    exit 1
  fi
  cp "$crt" "$out/tls.crt.new"
  cp "$key" "$out/tls.key.new"
  rm -f "$out/self-signed"
  echo "certs: using $crt ($(openssl x509 -in "$crt" -noout -subject -enddate | tr '\n' ' '))"
elif [ -s "$out/tls.crt" ] && [ -s "$out/tls.key" ]; then
  echo "certs: no certificate in $in; keeping the one in the volume"
  exit 0
else
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$out/tls.key.new" -out "$out/tls.crt.new" 2>/dev/null
  : > "$out/self-signed"
  echo "certs: no certificate in $in; made a self-signed one for localhost, 127.0.0.1"
fi
# The files are root's, group nginx (this runs as 0:101, gid 101 being nginx in the official
# image and the stand-in): the key readable by nginx and nobody else. Renamed into place, so
# a reloading nginx never reads half a file.
chmod 0644 "$out/tls.crt.new"
chmod 0640 "$out/tls.key.new"
mv "$out/tls.crt.new" "$out/tls.crt"
mv "$out/tls.key.new" "$out/tls.key"
