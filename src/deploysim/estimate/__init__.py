"""deploysim.estimate"""
