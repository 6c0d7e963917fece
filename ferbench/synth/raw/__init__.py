"""Raw-layout writers: faithful replicas of each dataset's published tree from in-memory images."""
