# This value should be set before the call.
# The caller will be told, and the lock may be held.
