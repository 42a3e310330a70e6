import optrs as torch
import optrs.nn as nn
import optrs.optim as optim
import optrs.nn.functional as F

class Net(nn.Module):
   def __init__(self):
       super(Net, self).__init__()
       self.conv1 = nn.Conv2d(1, 32, 3, 1)
       self.conv2 = nn.Conv2d(32, 64, 3, 1)
       self.dropout1 = nn.Dropout2d(0.25)
       self.dropout2 = nn.Dropout2d(0.5)
       self.fc1 = nn.Linear(9216, 128)
       self.fc2 = nn.Linear(128, 10)

   def forward(self, x):
       x = self.conv1(x)
       x = F.relu(x)
       x = self.conv2(x)
       x = F.relu(x)
       x = F.max_pool2d(x, 2)
       x = self.dropout1(x)
       x = torch.flatten(x, 1)
       x = self.fc1(x)
       x = F.relu(x)
       x = self.dropout2(x)
       x = self.fc2(x)
       output = F.log_softmax(x, dim=1)
       return output
net = Net()  # mended: the article never makes one
input = torch.randn(1, 1, 28, 28)
target = torch.tensor([3])  # mended: the article's torch.randn(1, 10) is no class index
criterion = nn.NLLLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
for epoch in range(10):
   # Forward pass
   output = net(input)
   loss = criterion(output, target)

   # Backward and optimize
   optimizer.zero_grad()
   loss.backward()
   optimizer.step()

   print('Epoch: {} loss: {:.4f}'.format(epoch+1, loss.item()))
