"""deploysim.grade"""
