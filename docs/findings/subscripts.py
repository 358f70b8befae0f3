def last(items):
    first = items[-1]
    rest = items[-2]
    return first, rest
