#!/usr/bin/env bash
# Render the kl_div API page to docs/_static/kl_div_page.png.
#
# Builds the HTML with a local MathJax (the default one is fetched by the
# reader's browser, which a machine without network cannot do) and takes a
# screenshot with headless Chromium. Needs Debian's packages:
#   apt-get install chromium-headless-shell libjs-mathjax fonts-mathjax
set -euo pipefail
docs="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

LUCID_MATHJAX_PATH="file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML" \
    sphinx-build -q -b html -d "$out/doctrees" "$docs" "$out/html"

shell="$(command -v chromium-headless-shell || command -v chromium)"
"$shell" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --allow-file-access-from-files --virtual-time-budget=15000 \
    --window-size="${WIDTH:-1280},${HEIGHT:-2400}" \
    --screenshot="$docs/_static/kl_div_page.png" \
    "file://$out/html/api/kl_div.html" 2>/dev/null
echo "wrote $docs/_static/kl_div_page.png"
