"""Where ``keyops adoption`` gets its numbers: each source turns counts into adoption evidence.

- :mod:`.endpoint`: a running endpoint's ``/metrics`` (distinct installs, or request counts);
- :mod:`.cloudwatch`: the EMF metrics and logs of a deployed stack, summed over its regions
  (imports boto3: only ``--from cloudwatch`` loads it);
- :mod:`.versions`: an app store's active installs per app version, with release records;
- :mod:`.tally`: what they share: counts per source, summed into :class:`Evidence`.
"""
