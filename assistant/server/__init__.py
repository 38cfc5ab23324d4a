"""What it takes to serve the assistant to other people: sign-in, rate limits and request guards.

Plain Python and ASGI, never gradio: `app.py` wires these around the Gradio app, and a later
JSON API (issue 15) gets the same protection by living behind the same middlewares.

* `auth`: password hashes (scrypt) and API tokens (sha256), checked in constant time.
* `ratelimit`: a token bucket per client, with an injectable clock.
* `guards`: ASGI middlewares: closed routes, same-origin posts, body size, bearer tokens, rate limit.
* `binding`: where to listen, and the refusal to listen beyond loopback with nobody signed in.
"""
