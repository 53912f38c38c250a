"""deploysim.validate"""
