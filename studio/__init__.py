"""`face2face studio`: the whole path (target, learn, check, drive, live) in one local browser page."""
