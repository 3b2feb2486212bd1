"""Login attempts, counted before a password is checked and in one step (a Lua script), so
parallel guesses cannot all slip under the limit.

A name is locked out only from the address that failed on it, for a minute and then twice
as long at each further lock-out that day: anyone can be refused at their own address,
nobody can lock a person out of the console from elsewhere. Each address has a limit over
all names too.
"""

from __future__ import annotations

import hashlib
import ipaddress

from flask import current_app

from approver.state import PREFIX
from approver.web.limits import client_address

WINDOW = 900  # seconds the attempts of a name and an address, or of an address, count
PER_NAME = 5  # attempts at one name from one address in the window, then a lock-out
PER_ADDRESS = 20  # attempts from one address in the window, whatever the names
FIRST_LOCKOUT, LONGEST_LOCKOUT = 60, 3600  # seconds; doubled each lock-out within a day
STRIKES_KEPT = 86400

# KEYS: lock-out, strikes, attempts at the name from the address, attempts from the address
# ARGV: PER_NAME, PER_ADDRESS, WINDOW, FIRST_LOCKOUT, LONGEST_LOCKOUT, STRIKES_KEPT
# Returns 0 (go ahead: this attempt is counted) or the seconds to wait.
_COUNT = """
local locked = redis.call('TTL', KEYS[1])
if locked > 0 then return locked end
local from_address = redis.call('INCR', KEYS[4])
if from_address == 1 then redis.call('EXPIRE', KEYS[4], ARGV[3]) end
if from_address > tonumber(ARGV[2]) then
  return math.max(1, redis.call('TTL', KEYS[4]))
end
local at_name = redis.call('INCR', KEYS[3])
if at_name == 1 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
if at_name <= tonumber(ARGV[1]) then return 0 end
local strikes = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local wait = math.min(tonumber(ARGV[4]) * 2 ^ (strikes - 1), tonumber(ARGV[5]))
wait = math.floor(wait)
redis.call('SET', KEYS[1], 1, 'EX', wait)
redis.call('DEL', KEYS[3])
return wait
"""
# KEYS: strikes, attempts at the name from the address, attempts from the address
_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECR', KEYS[3]) end
"""


def _address() -> str:
    """Whom to count: the client's address (behind a trusted proxy, the client's rather than
    the proxy's), or for IPv6 its /64, which one subscriber holds whole."""
    address = client_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else address


def _keys(name: str) -> list[str]:
    address = _address()
    pair = hashlib.sha256(f"{name}\n{address}".encode()).hexdigest()[:32]
    base = f"{PREFIX}console:login:"
    return [f"{base}lockout:{pair}", f"{base}strikes:{pair}", f"{base}name:{pair}",
            f"{base}address:{address}"]


def count(name: str) -> int:
    """Count an attempt at `name` from this client: 0 to go ahead, or seconds to wait."""
    redis = current_app.extensions["approver"].redis
    return int(redis.eval(_COUNT, 4, *_keys(name), PER_NAME, PER_ADDRESS, WINDOW,
                          FIRST_LOCKOUT, LONGEST_LOCKOUT, STRIKES_KEPT))


def succeeded(name: str) -> None:
    """A right password: forget this client's attempts at the name, and this one."""
    current_app.extensions["approver"].redis.eval(_SUCCEEDED, 3, *_keys(name)[1:])
