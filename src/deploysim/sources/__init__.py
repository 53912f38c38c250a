"""deploysim.sources"""
